"""Near-duplicate fingerprints: pure functions, no database."""

from __future__ import annotations

import random

from aggregator.parse import dedupe

WIRE = ("Iran and Russia sign a gas pipeline accord",
        "Iran and Russia signed an accord on Tuesday to build a gas pipeline across the "
        "Caspian Sea, officials in Tehran said, a step both governments called strategic. "
        "The pipeline would carry up to 20 billion cubic metres a year. "
        "Financing has not been agreed.")
OTHER = ("Turkey raises interest rates again",
         "Turkey's central bank raised its main interest rate by five points on Thursday, "
         "its fourth increase this year, as inflation stayed above sixty percent and the "
         "lira fell to a record low against the dollar.")


def fp(title: str, text: str) -> int:
    value = dedupe.fingerprint(title, text)
    assert value is not None
    return value


def test_a_wire_copy_with_light_edits_is_the_same_story() -> None:
    title, text = WIRE
    original = fp(title, text)
    assert dedupe.same_story(original, fp(title.upper(), text))
    assert dedupe.same_story(original, fp(title, "MOSCOW, Nov 20 (Reuters) - " + text))
    assert dedupe.same_story(original, fp(title, text.rsplit(" Financing", 1)[0]))
    assert dedupe.same_story(original, fp(title.title(), "TEHRAN (AP) -- " +
                                          text.rsplit(" Financing", 1)[0]))


def test_distinct_stories_are_far_apart() -> None:
    assert dedupe.distance(fp(*WIRE), fp(*OTHER)) > dedupe.MAX_DISTANCE


def test_too_short_texts_get_no_fingerprint() -> None:
    assert dedupe.fingerprint("Press review", "The main stories today.") is None


def test_fingerprints_are_stable_and_batching_changes_nothing() -> None:
    # Stored fingerprints must mean the same thing in every process: no hash() seeds.
    assert dedupe.fingerprints([WIRE, OTHER, ("x", "y")]) == [fp(*WIRE), fp(*OTHER), None]
    assert fp(*WIRE) == dedupe.fingerprint(*WIRE)


def test_only_a_leading_dateline_is_left_out() -> None:
    assert dedupe.words("T", "LONDON, March 3 (Reuters) - Oil rose") == ["t", "oil", "rose"]
    assert dedupe.words("T", "AP - Oil rose") == ["t", "oil", "rose"]
    assert dedupe.words("T", "Iran said on Monday - in a statement") == \
        ["t", "iran", "said", "on", "monday", "in", "a", "statement"]


def test_bands_find_every_pair_within_the_threshold() -> None:
    rand = random.Random(3)
    for _ in range(2000):
        a = rand.getrandbits(64)
        b = a
        for bit in rand.sample(range(64), rand.randint(0, dedupe.MAX_DISTANCE)):
            b ^= 1 << bit
        assert set(enumerate(dedupe.bands(a))) & set(enumerate(dedupe.bands(b)))


def test_signed_storage_round_trips() -> None:
    for value in (0, 1, (1 << 63) - 1, 1 << 63, (1 << 64) - 1):
        signed = dedupe.to_signed(value)
        assert -(1 << 63) <= signed < 1 << 63
        assert dedupe.from_signed(signed) == value


def test_story_choices_nearest_then_lowest_story_and_joins_within_the_batch() -> None:
    base = 0x0123_4567_89AB_CDEF
    near, nearer, far = base ^ 0b111, base ^ 0b1, base ^ 0xFFFF
    signed = dedupe.to_signed
    candidates = {
        # 10 is nearer than 5, whose story is older: the nearest wins.
        20: [(5, None, signed(near)), (10, None, signed(nearer))],
        # Same distance from two stories: the lower story id.
        21: [(12, 7, signed(near)), (11, 3, signed(near))],
        # 22 only sees 20, which joined 10's story earlier in this batch.
        22: [(20, None, signed(base))],
        # Too far apart: a story of its own.
        23: [(5, None, signed(far))],
    }
    items = [(20, base), (21, base), (22, base), (23, base)]
    assert dedupe.story_choices(items, candidates) == [(20, 10), (21, 3), (22, 10)]
    assert dedupe.story_choices(items, {}) == []
