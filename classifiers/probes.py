"""Hand-written probe articles (not in the training data) that check generalisation to real,
long articles: what tags each must get and must not get. Used by bench/evaluate_classifier.py
and the tests. The texts are written for this project.
"""

from __future__ import annotations

from dataclasses import dataclass

from classifiers.model import Doc


@dataclass(frozen=True)
class Probe:
    doc: Doc
    must: tuple[str, ...]
    must_not: tuple[str, ...] = ()


_DEEPENING = """\
When Vladimir Putin and Masoud Pezeshkian signed their comprehensive strategic partnership treaty in
Moscow, officials on both sides insisted it was not a military alliance. The text contains no mutual
defence clause, and neither capital wanted one. Yet the agreement formalised a relationship that has
changed more in the past three years than in the three decades before, and whose direction matters
for Ukraine, for the Middle East and for the South Caucasus.

The most visible strand is military. Since the autumn of 2022 Iran has sent Russia thousands of
Shahed one-way attack drones, first as finished airframes flown across the Caspian Sea and later as
kits and licences for a production line at Alabuga in Tatarstan. Ukrainian intelligence says Tehran
has also shipped artillery shells, ammunition and, according to Western governments, close-range
ballistic missiles of the Fath-360 type. Russian factories now turn out their own Geran variants
faster than Iran ever could, which has reduced Moscow's dependence on its supplier.

The flow has not been one way. Western officials believe Russia has handed over captured Western
weapons, including anti-tank missiles and a Stinger launcher taken in Ukraine, so that Iranian
engineers can study and copy them. Cash has travelled too: European security services have tracked
crates of euros and dollars flown from Moscow to Tehran as payment for drones. Iran has asked for
Su-35 fighter jets and S-400 air defence systems; deliveries have been slower than Tehran hoped, and
the question of whether Russia will sell its most advanced systems remains a test of the
partnership.

Space is a quieter but telling area of cooperation. A Soyuz rocket launched from Vostochny carried
the Iranian remote-sensing satellite Khayyam into orbit, and later Iranian research satellites rode
on Russian launches as well. Western analysts worry that high-resolution imagery from such
satellites could help Iran and its partners target ships and bases, and that launcher know-how could
feed Iran's missile programme.

The nuclear file is where the partnership is most ambiguous. Rosatom built the Bushehr power plant
and supplies its fuel, and Moscow has signed agreements to build further reactors. Russia also sat
on the negotiating side of the 2015 nuclear deal and has at times offered to take Iran's enriched
uranium. But as Iran has expanded enrichment at Natanz and Fordow and reduced cooperation with IAEA
inspectors, it has moved toward nuclear latency: the ability to build a weapon quickly if its
leaders decide to. Russia says it opposes an Iranian bomb, yet it has used its veto and its
diplomacy to shield Tehran from pressure at the Security Council.

Energy ties are the least developed. Both countries are major oil and gas exporters competing for
the same Asian buyers, often at steep discounts. Gazprom has signed a memorandum on supplying
natural gas to Iran through Azerbaijan, a swap arrangement in which Russian gas would feed Iran's
north while Iranian gas is exported from its southern fields. The volumes discussed are modest, the
pipeline capacity is uncertain, and the pricing has not been agreed.

Sanctions are the glue. Both economies are cut off from much of the Western financial system, and
both have built networks of front companies, shadow fleets of tankers and barter deals to evade
restrictions. Their central banks have linked the Russian Mir and Iranian Shetab payment systems,
and trade is increasingly settled in roubles and rials. The International North-South Transport
Corridor, including a railway link through Rasht and Astara, is meant to move goods from Russia's
Baltic ports to the Persian Gulf without touching Western-controlled routes.

The Caucasus is where interests diverge. Iran is wary of any corridor through Armenia's Syunik
province that would cut its border with Armenia, and it distrusts Azerbaijan's close ties with
Israel. Russia, which once guaranteed the region's ceasefires, has lost influence since Azerbaijan
retook Karabakh, and Moscow has been less willing than Tehran to oppose the Zangezur route.

Taken together, the relationship is neither an alliance nor a marriage of convenience that will fade
once the war in Ukraine ends. It is a pragmatic partnership between two sanctioned states that need
each other's weapons, markets and diplomatic cover, and that remain rivals in energy and in their
neighbourhood. For Western policymakers, the lesson is that pressure on one increasingly pushes it
toward the other."""

_MOSCOW_ONLY = """\
The Kremlin announced a sweeping reshuffle of Russia's economic team on Tuesday, replacing the head
of the finance ministry and two deputy prime ministers. Dmitry Peskov told reporters in Moscow that
President Vladimir Putin wanted "fresh energy" in managing the budget as military spending rises and
oil revenues fall. The central bank left its key rate unchanged at the same time, and the rouble
weakened slightly against the dollar. Analysts in Moscow said the appointments signalled continuity
rather than a change of course, since the new ministers had served as deputies for years. The State
Duma is expected to confirm the nominations next week.

Separately, Russian officials said wheat exports would be capped for the rest of the season to keep
domestic bread prices stable, and that the government would expand subsidies for regional
airlines."""

_TEHRAN_ONLY = """\
Iran's parliament approved a budget on Sunday that raises petrol prices for the first time in five
years, a move economists in Tehran said was unavoidable given a widening deficit. President Masoud
Pezeshkian defended the increase in a televised address, promising that cash transfers to poorer
households would offset the cost. The rial fell to a record low on the open market as traders
anticipated higher inflation. Members of the Majlis from the conservative bloc criticised the
government for failing to rein in spending by state companies. The last fuel price rise, in 2019,
led to nationwide unrest, and security forces were deployed in several cities as a precaution."""

_IRAN_ISRAEL = """\
Israel's military said it intercepted dozens of ballistic missiles fired from Iran overnight, after
Tehran vowed to retaliate for an Israeli strike on an IRGC commander in Damascus. Air raid sirens
sounded in Tel Aviv and Jerusalem, and the Arrow and David's Sling systems engaged most of the
incoming missiles, the IDF said. Prime Minister Benjamin Netanyahu convened his security cabinet and
warned that Israel would respond "at a time of our choosing". Iranian state media said the
Revolutionary Guards had targeted military bases and described the operation as a warning. The
United States, which helped shoot down some of the missiles, urged both sides to avoid a wider
war."""

PROBES: tuple[Probe, ...] = (
    Probe(
        Doc("probe-deepening", "Russia and Iran's Deepening Relationship", _DEEPENING, ("Analysis",)),
        must=(
            "russia-iran",
            "russia",
            "iran",
            "arms-transfers",
            "nuclear",
            "space",
            "energy",
            "sanctions",
            "analysis",
        ),
        must_not=("news",),
    ),
    Probe(
        Doc("probe-moscow", "Putin reshuffles economic team as budget strains mount", _MOSCOW_ONLY),
        must=("russia",),
        must_not=("russia-iran", "iran"),
    ),
    Probe(
        Doc("probe-tehran", "Iran raises petrol prices in austerity budget", _TEHRAN_ONLY),
        must=("iran",),
        must_not=("russia-iran", "russia"),
    ),
    Probe(
        Doc("probe-iran-israel", "Israel intercepts Iranian missile barrage", _IRAN_ISRAEL),
        must=("iran", "israel"),
        must_not=("russia-iran", "russia"),
    ),
)


def check(predicted: dict[str, tuple[str, ...]]) -> list[str]:
    """Problems with predictions (probe id -> labels), as readable lines; empty when all pass."""
    problems = []
    for probe in PROBES:
        labels = set(predicted.get(probe.doc.id, ()))
        for tag in probe.must:
            if tag not in labels:
                problems.append(f"{probe.doc.id}: missing {tag}")
        for tag in probe.must_not:
            if tag in labels:
                problems.append(f"{probe.doc.id}: unexpected {tag}")
    return problems
