"""Digests: what is due for whom (select), how it reads (render), how it goes out (send)."""
