# cython: language_level=3, boundscheck=False
"""The fast path's entry reader, compiled: the same rules as ``fast._Entry``, reading
libxml2's nodes directly instead of through lxml's Python proxies.

Building a proxy, a tag string and a text string for every child of every entry, then
dispatching on them in Python, was most of the fast path's time on dense feeds. Here the
walk, the dispatch and the text reads are C; the values stored are the same Python objects
the pure-Python reader builds, made by the same helpers where those are not on the hot
path (``_fix``, ``parse_date``, ``_Base.join``...).

The contract is ``fast._Entry``'s, read for read: this module must produce exactly what
that class produces. Anything outside the common cases it covers (xml:base or xml:lang
below the root, inline XHTML, markup where text is expected, an element that makes the
Python reader decline...) raises ``_Bail``, and the entry is read again by ``_Entry``,
which either reads it or declines the document. Entries are independent of one another
bar two flags on the document, which are only written back when an entry is read here
in full. ``tests/test_parse_native.py`` compares the two over every corpus.

Built at install time when Cython and a C compiler are there (``hatch_build.py``); when
it is not built, ``fast`` reads every entry itself.
"""

from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr, strlen

cimport lxml.includes.etreepublic as cetree
from lxml.includes cimport tree
from lxml.includes.tree cimport xmlNode, xmlAttr, const_xmlChar

from aggregator.parse import fast as _fast

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object)
    void* PyUnicode_DATA(object)
    Py_ssize_t PyUnicode_GET_LENGTH(object)

cetree.import_lxml__etree()

from time import struct_time

cdef object _C1 = _fast._C1
cdef object _cp1252 = _fast._cp1252
cdef object _looks_like_html = _fast._looks_like_html
cdef object _map_type = _fast._map_type
cdef object _take_href = _fast._take_href
cdef object _xml_escape = _fast._xml_escape
cdef object parse_date = _fast.parse_date
cdef object _EMAIL = _fast._EMAIL
cdef object _LINK_ENTITY = _fast._LINK_ENTITY
cdef object _MATCH = _fast._MATCH
cdef frozenset _HTML_TYPES = frozenset(_fast._HTML_TYPES)
cdef frozenset _PERSON_PARTS = frozenset(_fast._PERSON_PARTS)
cdef str _ITUNES = _fast._ITUNES
cdef str _MRSS_SCHEME = _fast._MRSS_SCHEME
cdef bytes _RDF = _fast._RDF.encode()

# fast's kinds, as C constants (checked against fast's at import).
cdef enum:
    K_UNKNOWN, K_TITLE, K_MEDIA_TITLE, K_LINK, K_GUID, K_PUBLISHED, K_UPDATED, K_DESCRIPTION,
    K_SUMMARY, K_CONTENT_ENCODED, K_CONTENT, K_CATEGORY, K_ITUNES_CATEGORY, K_KEYWORDS,
    K_AUTHOR, K_CONTRIBUTOR, K_ENCLOSURE, K_SOURCE, K_CONTAINER, K_HARMLESS, K_DECLINE

if (_fast.K_UNKNOWN, _fast.K_TITLE, _fast.K_LINK, _fast.K_CONTENT, _fast.K_KEYWORDS,
        _fast.K_ENCLOSURE, _fast.K_HARMLESS, _fast.K_DECLINE) != (
        K_UNKNOWN, K_TITLE, K_LINK, K_CONTENT, K_KEYWORDS, K_ENCLOSURE, K_HARMLESS, K_DECLINE):
    raise ImportError("aggregator.parse._walk was built for other element kinds than "
                      "fast.py's: run `pip install -e .` to rebuild it")

# The digest of the source this was compiled from (hatch_build.py defines it), which
# fast.compiled_reader compares with the source beside it.
cdef extern from *:
    """
    #ifndef AGGREGATOR_WALK_SOURCE
    #define AGGREGATOR_WALK_SOURCE ""
    #endif
    """
    const char* AGGREGATOR_WALK_SOURCE

SOURCE_DIGEST = AGGREGATOR_WALK_SOURCE.decode("ascii")

# Indexes of the keys fast._Entry.store keeps depths for.
cdef enum:
    S_TITLE, S_ID, S_PUBLISHED, S_UPDATED, S_SUMMARY, S_AUTHOR, S_COUNT

cdef enum:
    CACHE = 48
cdef int NO_DEPTH = 1 << 30


class _Bail(Exception):
    """This entry needs the Python reader."""


cdef str _fix(str output):
    """fast._fix."""
    if PyUnicode_IS_ASCII(output):
        return output
    try:
        output = output.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    if _C1.search(output):
        output = output.translate(_cp1252)
    return output


# --- node reads, as lxml's proxies make them ----------------------------------------------

cdef inline bint _is_text(xmlNode* n) noexcept:
    return n.type == tree.XML_TEXT_NODE or n.type == tree.XML_CDATA_SECTION_NODE


cdef inline bint _is_element_like(xmlNode* n) noexcept:
    # What iterating an lxml element yields (and len() counts).
    return (n.type == tree.XML_ELEMENT_NODE or n.type == tree.XML_COMMENT_NODE
            or n.type == tree.XML_ENTITY_REF_NODE or n.type == tree.XML_PI_NODE)


cdef inline bint _has_children(xmlNode* n) noexcept:
    cdef xmlNode* c = n.children
    while c is not NULL:
        if _is_element_like(c):
            return True
        c = c.next
    return False


cdef inline str _decode(const_xmlChar* s):
    return PyUnicode_DecodeUTF8(<const char*>s, strlen(<const char*>s), NULL)


cdef str _text(xmlNode* n):
    """``el.text or ""``: the run of text and CDATA nodes before the first child element."""
    cdef xmlNode* c = n.children
    if c is NULL or not _is_text(c):
        return ""
    if c.next is NULL or not _is_text(c.next):
        return _decode(c.content) if c.content is not NULL else ""
    cdef list parts = []
    while c is not NULL and _is_text(c):
        if c.content is not NULL:
            parts.append(_decode(c.content))
        c = c.next
    return "".join(parts)


cdef str _own_text(xmlNode* n):
    """fast._own_text: an element's text and its children's tails, i.e. every text node
    directly under it, in order."""
    cdef list parts = []
    cdef xmlNode* c = n.children
    while c is not NULL:
        if _is_text(c) and c.content is not NULL:
            parts.append(_decode(c.content))
        c = c.next
    return "".join(parts)


cdef str _attr_value(xmlAttr* a):
    cdef xmlNode* c = a.children
    if c is NULL:
        return ""
    if c.next is not NULL or c.type != tree.XML_TEXT_NODE:
        raise _Bail()
    return _decode(c.content) if c.content is not NULL else ""


cdef object _get(xmlNode* n, const char* name):
    """``el.get(name)`` for a name without a namespace."""
    cdef xmlAttr* a = n.properties
    while a is not NULL:
        if a.ns is NULL and a.name is not NULL and _eq(a.name, name):
            return _attr_value(a)
        a = a.next
    return None


cdef inline bint _eq(const_xmlChar* s, const char* t) noexcept:
    cdef size_t i = 0
    while s[i] == <unsigned char>t[i]:
        if s[i] == 0:
            return True
        i += 1
    return False


cdef dict _attrs(xmlNode* n):
    """fast._attrs: names lowercased, known namespaces prefixed, rel and type lowercased."""
    cdef dict d = {}
    cdef xmlAttr* a = n.properties
    cdef list qnames = None
    cdef str key, local, value, ns, prefix
    while a is not NULL:
        value = _attr_value(a)
        local = _decode(a.name)
        if a.ns is not NULL and a.ns.href is not NULL:
            ns = _decode(a.ns.href)
            prefix = _MATCH.get(ns.lower(), "")
            key = f"{prefix}:{local}" if prefix else local
            if qnames is None:
                qnames = []
            qnames.append((local, value))
        else:
            key = local
        key = key.lower()
        d[key] = value.lower() if (key == "rel" or key == "type") and value else value
        a = a.next
    if qnames is not None:
        for local, value in qnames:
            key = local.lower()
            d[key] = value.lower() if (key == "rel" or key == "type") and value else value
    return d


# --- dates: fast.parse_date's two direct shapes, in C -------------------------------------

cdef inline int _digits(const char* s, Py_ssize_t at, int n) noexcept:
    """The number written by n ASCII digits at s[at], or -1."""
    cdef int value = 0
    cdef int i
    cdef char ch
    for i in range(n):
        ch = s[at + i]
        if ch < c'0' or ch > c'9':
            return -1
        value = value * 10 + (ch - c'0')
    return value


cdef inline long _days_from_civil(long y, long m, long d) noexcept:
    # Howard Hinnant's algorithm: days since 1970-01-01 in the proleptic Gregorian calendar.
    y -= m <= 2
    cdef long era = (y if y >= 0 else y - 399) // 400
    cdef long yoe = y - era * 400
    cdef long doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    cdef long doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline bint _leap(long y) noexcept:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


cdef int[13] _MONTH_DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
cdef int[13] _BEFORE_MONTH = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334]
cdef const char* _MONTH_NAMES = b"JanFebMarAprMayJunJulAugSepOctNovDec"
cdef const char* _DAY_NAMES = b"MonTueWedThuFriSatSun"


cdef object _utc_struct(int year, int month, int day, int hh, int mm, int ss, long offset):
    """``(datetime(...) - timedelta(seconds=offset)).utctimetuple()``, or None where
    datetime would refuse the fields (the caller then asks fast.parse_date)."""
    if not 1900 < year < 9000 or not 1 <= month <= 12 or hh > 23 or mm > 59 or ss > 59:
        return None
    if day < 1 or day > _MONTH_DAYS[month] + (month == 2 and _leap(year)):
        return None
    cdef long days = _days_from_civil(year, month, day)
    cdef long secs = hh * 3600 + mm * 60 + ss - offset
    days += secs // 86400
    secs %= 86400
    # civil from days
    cdef long z = days + 719468
    cdef long era = (z if z >= 0 else z - 146096) // 146097
    cdef long doe = z - era * 146097
    cdef long yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef long y = yoe + era * 400
    cdef long doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef long mp = (5 * doy + 2) // 153
    cdef long d = doy - (153 * mp + 2) // 5 + 1
    cdef long m = mp + (3 if mp < 10 else -9)
    y += m <= 2
    cdef long yday = _BEFORE_MONTH[m] + d + (m > 2 and _leap(y))
    cdef long wday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    return struct_time((y, m, d, secs // 3600, secs % 3600 // 60, secs % 60, wday, yday, 0))


cdef object _parse_date(str value):
    """fast.parse_date, with RFC 822 and W3C dates read here."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value)
    if not PyUnicode_IS_ASCII(value) or n < 20:
        return parse_date(value)
    cdef const char* s = <const char*>PyUnicode_DATA(value)
    cdef Py_ssize_t i = 0
    cdef int day, month = 0, year, hh, mm, ss, tzh = 0, tzm = 0, k
    cdef long sign = 0
    cdef object parsed = None
    if s[4] == c'-':  # 2026-11-24T18:20:00[.123](Z|+02:00)
        year = _digits(s, 0, 4)
        month = _digits(s, 5, 2)
        day = _digits(s, 8, 2)
        hh = _digits(s, 11, 2)
        mm = _digits(s, 14, 2)
        ss = _digits(s, 17, 2)
        if (year < 0 or month < 0 or day < 0 or hh < 0 or mm < 0 or ss < 0 or s[7] != c'-'
                or s[10] != c'T' or s[13] != c':' or s[16] != c':'):
            return parse_date(value)
        i = 19
        if s[i] == c'.':
            i += 1
            if not (c'0' <= s[i] <= c'9'):
                return parse_date(value)
            while c'0' <= s[i] <= c'9':
                i += 1
        if i == n - 1 and s[i] == c'Z':
            parsed = _utc_struct(year, month, day, hh, mm, ss, 0)
        elif i == n - 6 and (s[i] == c'+' or s[i] == c'-') and s[i + 3] == c':':
            tzh = _digits(s, i + 1, 2)
            tzm = _digits(s, i + 4, 2)
            if tzh < 0 or tzm < 0:
                return parse_date(value)
            sign = -1 if s[i] == c'-' else 1
            parsed = _utc_struct(year, month, day, hh, mm, ss, sign * (tzh * 3600 + tzm * 60))
        else:
            return parse_date(value)
        return parsed if parsed is not None else parse_date(value)
    # [Tue, ]24 Nov 2026 18:20:00 (+0200|GMT|UT|Z)
    if s[3] == c',':
        for k in range(7):
            if s[0] == _DAY_NAMES[3 * k] and s[1] == _DAY_NAMES[3 * k + 1] \
                    and s[2] == _DAY_NAMES[3 * k + 2]:
                break
        else:
            return parse_date(value)
        if s[4] != c' ':
            return parse_date(value)
        i = 5
    day = _digits(s, i, 2)
    if day >= 0 and s[i + 2] == c' ':
        i += 3
    else:
        day = _digits(s, i, 1)
        if day < 0 or s[i + 1] != c' ':
            return parse_date(value)
        i += 2
    if n - i < 18:
        return parse_date(value)
    for k in range(12):
        if s[i] == _MONTH_NAMES[3 * k] and s[i + 1] == _MONTH_NAMES[3 * k + 1] \
                and s[i + 2] == _MONTH_NAMES[3 * k + 2]:
            month = k + 1
            break
    else:
        return parse_date(value)
    year = _digits(s, i + 4, 4)
    hh = _digits(s, i + 9, 2)
    mm = _digits(s, i + 12, 2)
    ss = _digits(s, i + 15, 2)
    if (s[i + 3] != c' ' or year < 0 or s[i + 8] != c' ' or hh < 0 or s[i + 11] != c':'
            or mm < 0 or s[i + 14] != c':' or ss < 0 or s[i + 17] != c' '):
        return parse_date(value)
    i += 18
    if n - i == 5 and (s[i] == c'+' or s[i] == c'-'):
        tzh = _digits(s, i + 1, 2)
        tzm = _digits(s, i + 3, 2)
        if tzh < 0 or tzm < 0:
            return parse_date(value)
        sign = -1 if s[i] == c'-' else 1
    elif not ((n - i == 3 and s[i] == c'G' and s[i + 1] == c'M' and s[i + 2] == c'T')
              or (n - i == 2 and s[i] == c'U' and s[i + 1] == c'T')
              or (n - i == 1 and s[i] == c'Z')):
        return parse_date(value)
    parsed = _utc_struct(year, month, day, hh, mm, ss, sign * (tzh * 3600 + tzm * 60))
    return parsed if parsed is not None else parse_date(value)


def parse_date_native(value: str):
    """What ``_parse_date`` returns, for tests: fast.parse_date's result, faster."""
    return _parse_date(value)


# --- URLs -----------------------------------------------------------------------------------

cdef inline bint _space(char ch) noexcept:
    # What str's \s matches among ASCII characters.
    return ch == c' ' or (c'\t' <= ch <= c'\r') or (c'\x1c' <= ch <= c'\x1f')


cdef bint _plain_url(str value):
    """``fast._PLAIN_URL.match(value)`` for ASCII values (False for the others)."""
    if not PyUnicode_IS_ASCII(value):
        return False
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(value)
    cdef const char* s = <const char*>PyUnicode_DATA(value)
    cdef Py_ssize_t i, start
    cdef char ch
    if n >= 8 and s[0] == c'h' and s[1] == c't' and s[2] == c't' and s[3] == c'p':
        i = 4
        if s[i] == c's':
            i += 1
        if not (s[i] == c':' and s[i + 1] == c'/' and s[i + 2] == c'/'):
            return False
        i += 3
    else:
        return False
    start = i
    while i < n and (c'a' <= s[i] <= c'z' or c'A' <= s[i] <= c'Z' or c'0' <= s[i] <= c'9'
                     or s[i] == c'.' or s[i] == c'-'):
        i += 1
    if i == start:
        return False
    if i < n and s[i] == c':':
        i += 1
        start = i
        while i < n and c'0' <= s[i] <= c'9':
            i += 1
        if not 1 <= i - start <= 5:
            return False
    if i < n and s[i] == c'/':
        while i < n and not (_space(s[i]) or s[i] == c';' or s[i] == c'?' or s[i] == c'#'):
            i += 1
    if i < n and s[i] == c'?':
        i += 1
        start = i
        while i < n and not (_space(s[i]) or s[i] == c'#'):
            i += 1
        if i == start:
            return False
    if i < n and s[i] == c'#':
        i += 1
        start = i
        while i < n and not _space(s[i]):
            i += 1
        if i == start:
            return False
    return i == n


def plain_url_native(value: str) -> bool:
    """``_plain_url``, for tests."""
    return _plain_url(value)


# --- the document scan ---------------------------------------------------------------------

cdef inline bint _bspace(unsigned char ch) noexcept:
    # bytes' \s
    return ch == c' ' or c'\t' <= ch <= c'\r'


cdef inline bint _name_char(unsigned char ch) noexcept:
    # fast._NS_DECL's prefix class, [^\s=>"']
    return not (_bspace(ch) or ch == c'=' or ch == c'>' or ch == c'"' or ch == c"'")


def scan(const unsigned char[::1] data, Py_ssize_t after):
    """What fast._Doc learns from the bytes, in one pass over the '=' signs:
    ``(has_base, base_at_or_past_after, has_lang, lang_at_or_past_after, starts)``, the
    first four as ``fast._where`` gives them for b"base=" and b"lang=", and ``starts`` the
    offsets, in order, of every "xmlns" that ``fast._NS_DECL`` could match from (the
    caller matches there, as findall would)."""
    cdef Py_ssize_t n = data.shape[0], p = 0, q, start, i
    cdef const unsigned char* s = &data[0] if n else NULL
    cdef const unsigned char* hit
    cdef bint has_base = False, base_after = False, has_lang = False, lang_after = False
    cdef list starts = []
    while p < n:
        hit = <const unsigned char*>memchr(s + p, c'=', n - p)
        if hit is NULL:
            break
        p = hit - s
        if p >= 4:
            if s[p - 4] == c'b' and s[p - 3] == c'a' and s[p - 2] == c's' and s[p - 1] == c'e':
                has_base = True
                base_after = base_after or p - 4 >= after
            elif s[p - 4] == c'l' and s[p - 3] == c'a' and s[p - 2] == c'n' and s[p - 1] == c'g':
                has_lang = True
                lang_after = lang_after or p - 4 >= after
        q = p
        while q > 0 and _bspace(s[q - 1]):
            q -= 1
        start = q
        while start > 0 and _name_char(s[start - 1]):
            start -= 1
        i = start
        while i + 5 <= q:
            if s[i] == c'x' and s[i + 1] == c'm' and s[i + 2] == c'l' and s[i + 3] == c'n' \
                    and s[i + 4] == c's':
                starts.append(i)
            i += 1
        p += 1
    return has_base, base_after, has_lang, lang_after, starts


# --- the walker ---------------------------------------------------------------------------

cdef class Walker:
    """Reads the entries of one document; built per document (its name cache holds
    pointers into that document's tree)."""

    cdef object doc
    cdef bint atom
    # (name, namespace) pointers -> kind and feedparser name, for this document.
    cdef const_xmlChar* c_names[CACHE]
    cdef void* c_ns[CACHE]
    cdef int c_kinds[CACHE]
    cdef list c_fpnames
    cdef int n_cached
    # One entry's state (fast._Entry's fields).
    cdef dict e
    cdef int depths[S_COUNT]
    cdef list links, tags, authors, content
    cdef bint guidislink
    cdef int title_depth
    cdef int has_content
    cdef object last_date_text, last_date_parsed
    cdef object base, base_uri, lang
    cdef str cur_name

    def __init__(self, doc):
        self.doc = doc
        self.atom = doc.atom
        self.c_fpnames = []
        self.n_cached = 0

    def entry(self, cetree._Element el, int depth, base, lang):
        """The entry read as ``fast._Feed.entry`` reads it, or None when it needs
        ``_Entry`` (nothing on the document has changed then)."""
        return self._read(el._c_node, depth, base, lang)

    def channel(self, feed, cetree._Element channel, int depth, base, lang):
        """``fast._Feed.channel``: each child of the channel to ``feed.child``, and its
        entries read here where they can be."""
        cdef xmlNode* c = channel._c_node.children
        cdef cetree._Document owner = channel._doc
        entries = feed.r.entries
        while c is not NULL:
            if c.type == tree.XML_ELEMENT_NODE:
                self._kind(c)
                if self.cur_name == "item" or self.cur_name == "entry":
                    read = self._read(c, depth, base, lang)
                    if read is None:
                        feed.read_entry(cetree.elementFactory(owner, c), depth, base, lang)
                    else:
                        entries.append(read)
                else:
                    feed.child(cetree.elementFactory(owner, c), depth, base, lang)
            elif not _is_text(c):
                feed.child(cetree.elementFactory(owner, c), depth, base, lang)
            c = c.next

    cdef dict _read(self, xmlNode* node, int depth, base, lang):
        """The entry, or None when the Python reader must read it."""
        if self.doc.has_base or self.doc.has_lang:
            return None
        try:
            return self._entry(node, depth, base, lang)
        except _Bail:
            return None

    cdef dict _entry(self, xmlNode* node, int depth, base, lang):
        cdef xmlAttr* a
        cdef xmlNode* c
        cdef int i
        self.e = {}
        for i in range(S_COUNT):
            self.depths[i] = NO_DEPTH
        self.links = []
        self.tags = []
        self.authors = []
        self.content = []
        self.guidislink = False
        self.title_depth = -1
        self.has_content = self.doc.has_content
        self.last_date_text = ""
        self.last_date_parsed = None
        self.base = base
        self.base_uri = base.uri
        self.lang = lang
        a = node.properties
        while a is not NULL:
            if a.ns is NULL:
                low = _decode(a.name).lower()
                if low == "href" or low == "lastmod":
                    raise _Bail()  # a CDF item: the Python reader declines it
            elif a.ns.href is not NULL and _eq(a.ns.href, _RDF) and _eq(a.name, b"about"):
                about = _attr_value(a)
                if about:
                    self.e["id"] = about
            a = a.next
        self._children(node, depth + 1)
        result = self._result()
        self.doc.title_depth = self.title_depth
        self.doc.has_content = 0
        return result

    cdef int _kind(self, xmlNode* n) except -1:
        """fast._Doc.kind for the element; sets ``cur_name`` to its feedparser name."""
        cdef int i
        for i in range(self.n_cached):
            if self.c_names[i] == n.name and self.c_ns[i] == <void*>n.ns:
                self.cur_name = self.c_fpnames[i]
                return self.c_kinds[i]
        if n.ns is not NULL and n.ns.href is not NULL:
            tag = f"{{{_decode(n.ns.href)}}}{_decode(n.name)}"
        else:
            tag = _decode(n.name)
        doc = self.doc
        kind = doc.kinds.get(tag)
        if kind is None:
            kind = doc.kind(tag)
        self.cur_name = doc.names[tag]
        if self.n_cached < CACHE:
            i = self.n_cached
            self.c_names[i] = n.name
            self.c_ns[i] = <void*>n.ns
            self.c_kinds[i] = kind
            self.c_fpnames.append(self.cur_name)
            self.n_cached += 1
        return kind

    cdef inline void _store(self, int slot, str key, value, int depth):
        if depth <= self.depths[slot]:
            self.depths[slot] = depth
            self.e[key] = value

    cdef str _join(self, str value):
        """fast._Base.join, the common case answered here."""
        if self.base_uri and _plain_url(value):
            return value
        return self.base.join(value)

    cdef str _plain(self, xmlNode* n, bint resolve):
        if _has_children(n):
            raise _Bail()
        cdef str output = _text(n)
        if not output:
            return ""
        output = output.strip()
        if resolve and output:
            output = self._join(output)
        return output if output.isascii() else _fix(output)

    cdef tuple _content_value(self, xmlNode* n, str default_type):
        cdef str ctype
        if n.properties is not NULL:
            a = _attrs(n)
            if "mode" in a:
                raise _Bail()
            ctype = _map_type(a.get("type", default_type))
            if not (ctype.startswith("text/") or ctype.endswith(("+xml", "/xml"))):
                raise _Bail()
        else:
            ctype = default_type
        if _has_children(n):
            raise _Bail()  # inline XHTML, or markup the Python reader declines
        cdef str output
        if ctype == "application/xhtml+xml":
            output = _xml_escape(_text(n)).strip()
        else:
            output = _text(n).strip()
        if not self.atom and ctype == "text/plain" and ("<" in output or "&" in output) \
                and _looks_like_html(output):
            ctype = "text/html"
        return (output if output.isascii() else _fix(output)), ctype

    cdef void _add_tag(self, term, scheme, label) except *:
        if not term and not scheme and not label:
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in self.tags:
            self.tags.append(value)

    cdef void _end_category(self, str value) except *:
        if not value:
            return
        if self.tags and not self.tags[-1]["term"]:
            self.tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    cdef void _sync_author(self) except *:
        e = self.e
        detail = self.authors[-1] if self.authors else {}
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name and email:
                e["author"] = f"{name} ({email})"
            elif name:
                e["author"] = name
            elif email:
                e["author"] = email
            return
        author = e.get("author")
        if not author:
            return
        email = None
        m = _EMAIL.search(author) if "@" in author else None  # the pattern needs one
        if m:
            email = m.group(0)
            author = author.replace(email, "").replace("()", "").replace("<>", "")
            author = author.replace("&lt;&gt;", "").strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    cdef void _add_content(self, xmlNode* n, str default) except *:
        self.has_content = 1
        value, ctype = self._content_value(n, default)
        lang = self.lang
        item = {"type": ctype, "language": lang.replace("_", "-") if lang else lang,
                "base": self.base_uri, "value": value}
        src = _get(n, b"src")
        if src:
            item["src"] = src
        self.content.append(item)
        if ctype in _HTML_TYPES or ctype == "text/plain":
            self.e.setdefault("summary", value)

    cdef void _child(self, xmlNode* n, int depth) except *:
        cdef int kind = self._kind(n)
        cdef int saved
        cdef xmlNode* c
        cdef str name = self.cur_name
        cdef dict e = self.e
        if kind == K_TITLE or kind == K_MEDIA_TITLE:
            saved = self.title_depth
            value, _ = self._content_value(n, "text/plain")
            if not (-1 < self.title_depth <= depth):
                self._store(S_TITLE, "title", value, depth)
            if value:
                self.title_depth = depth
            if kind == K_MEDIA_TITLE:
                self.title_depth = saved
        elif kind == K_LINK:
            if _has_children(n):
                raise _Bail()
            a = _attrs(n)
            a.setdefault("rel", "alternate")
            a.setdefault("type", "application/atom+xml" if a["rel"] == "self" else "text/html")
            _take_href(a)
            if "href" in a:
                a["href"] = self._join(a["href"])
            self.links.append(a)
            if "href" in a:
                if a.get("rel") == "alternate" and _map_type(a.get("type") or "") in _HTML_TYPES:
                    e["link"] = a["href"]
            else:
                output = self._plain(n, True)
                output = output.replace("&amp;", "&")
                if "&" in output:
                    output = _LINK_ENTITY.sub(r"&\g<1>", output)
                e["link"] = output
                if output:
                    a["href"] = output
        elif kind == K_GUID:
            self.guidislink = (_attrs(n).get("ispermalink", "true")
                               if n.properties is not NULL else "true") == "true"
            output = self._plain(n, self.guidislink)
            self._store(S_ID, "id", output, depth)
            if self.guidislink:
                e.setdefault("link", output)
        elif kind == K_PUBLISHED or kind == K_UPDATED:
            output = self._plain(n, False)
            if kind == K_PUBLISHED:
                self._store(S_PUBLISHED, "published", output, depth)
            else:
                self._store(S_UPDATED, "updated", output, depth)
            if output and output == self.last_date_text:
                parsed = self.last_date_parsed  # Atom's updated is often its published
            else:
                parsed = _parse_date(output) if output else None
                self.last_date_text = output
                self.last_date_parsed = parsed
            e["published_parsed" if kind == K_PUBLISHED else "updated_parsed"] = parsed
        elif kind == K_DESCRIPTION or kind == K_SUMMARY:
            if "summary" in e and not self.has_content:
                self._add_content(n, "text/plain")
            else:
                value, _ = self._content_value(
                    n, "text/html" if kind == K_DESCRIPTION else "text/plain")
                self._store(S_SUMMARY, "summary", value, depth)
                e["summary_detail"] = {"base": self.base_uri}
        elif kind == K_CONTENT_ENCODED:
            self._add_content(n, "text/html")
        elif kind == K_CONTENT:
            self._add_content(n, "text/plain")
        elif kind == K_CATEGORY or kind == K_ITUNES_CATEGORY:
            a = _attrs(n) if n.properties is not NULL else {}
            if kind == K_ITUNES_CATEGORY:
                self._add_tag(a.get("text"), _ITUNES, None)
            else:
                if name == "media_category":
                    a.setdefault("scheme", _MRSS_SCHEME)
                self._add_tag(a.get("term"), a.get("scheme", a.get("domain")), a.get("label"))
            self._end_category(self._plain(n, False))
        elif kind == K_KEYWORDS:
            if n.properties is not NULL:
                if name == "tags":
                    raise _Bail()
                return
            for term in self._plain(n, False).split(","):
                term = term.strip()
                if name == "tags":
                    self._add_tag(term, None, None)
                elif term:
                    self._add_tag(term, _ITUNES if name == "itunes_keywords" else None, None)
        elif kind == K_AUTHOR:
            self.authors.append({})
            c = n.children
            while c is not NULL:
                if c.type == tree.XML_ELEMENT_NODE:
                    self._kind(c)
                    part_name = self.cur_name
                    if part_name not in _PERSON_PARTS or _has_children(c):
                        raise _Bail()
                    value = _text(c).strip()
                    if part_name == "name" or part_name == "email":
                        self._sync_author()
                        self.authors[-1][part_name] = value
                    else:
                        href = _fix(self._join(value)) if value else value
                        self._sync_author()
                        self.authors[-1]["href"] = href
                elif not _is_text(c):
                    raise _Bail()
                c = c.next
            self._store(S_AUTHOR, "author", _fix(_own_text(n).strip()), depth)
            self._sync_author()
        elif kind == K_CONTRIBUTOR:
            c = n.children
            while c is not NULL:
                if c.type == tree.XML_ELEMENT_NODE:
                    self._kind(c)
                    if self.cur_name not in _PERSON_PARTS or _has_children(c):
                        raise _Bail()
                elif not _is_text(c):
                    raise _Bail()
                c = c.next
        elif kind == K_ENCLOSURE:
            if _has_children(n):
                raise _Bail()
            a = _attrs(n)
            _take_href(a)
            a["rel"] = "enclosure"
            self.links.append(a)
        elif kind == K_SOURCE:
            if _has_children(n):
                raise _Bail()
            self.title_depth = -1
        elif kind == K_HARMLESS:
            if _has_children(n):
                raise _Bail()
        elif kind == K_DECLINE:
            raise _Bail()
        else:  # K_CONTAINER, or unknown: feedparser walks into it
            self._children(n, depth + 1)

    cdef void _children(self, xmlNode* n, int depth) except *:
        """Each child element of ``n`` read at ``depth`` (text between them skipped)."""
        cdef xmlNode* c = n.children
        while c is not NULL:
            if c.type == tree.XML_ELEMENT_NODE:
                self._child(c, depth)
            elif not _is_text(c):
                raise _Bail()
            c = c.next

    cdef dict _result(self):
        # Every key the walk stores is one fast._Entry.result keeps: the mapping itself
        # is the result.
        e = self.e
        if "updated" not in e and "published" in e:
            e["updated"] = e["published"]
        if "updated_parsed" not in e and "published_parsed" in e:
            e["updated_parsed"] = e["published_parsed"]
        if self.content:
            e["content"] = self.content
        if self.tags:
            e["tags"] = self.tags
        if self.authors:
            e["authors"] = self.authors
        e["links"] = self.links
        e["enclosures"] = [{k: v for k, v in link.items() if k != "rel"}
                             for link in self.links if link.get("rel") == "enclosure"]
        return e
