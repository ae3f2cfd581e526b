"""Geocodes that European warning services use for French départements.

NUTS3 (Eurostat): MeteoAlarm still publishes NUTS 2013 codes (FR718 Haute-Savoie, FR245 Loir-et-Cher),
newer documents NUTS 2016/2021 ones (FRK28, FRB05). Both versions are read; they never collide.

EMMA_ID (MeteoAlarm's own area ids) are NOT département numbers: FR035 is Haute-Savoie, not
Ille-et-Vilaine. Only ids verified against a published MeteoAlarm document are mapped (the shared
real MeteoAlarm France feed pairs each EMMA_ID with its NUTS3 code); an unknown EMMA_ID maps to no
département rather than to a guess. Documents that carry EMMA_ID also carry NUTS3.
"""

from __future__ import annotations

# NUTS 2013 (regions before the 2016 merger), département code in INSEE order within each region.
_NUTS_2013 = {
    "FR10": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "FR21": ("08", "10", "51", "52"),
    "FR22": ("02", "60", "80"),
    "FR23": ("27", "76"),
    "FR24": ("18", "28", "36", "37", "41", "45"),
    "FR25": ("14", "50", "61"),
    "FR26": ("21", "58", "71", "89"),
    "FR30": ("59", "62"),
    "FR41": ("54", "55", "57", "88"),
    "FR42": ("67", "68"),
    "FR43": ("25", "39", "70", "90"),
    "FR51": ("44", "49", "53", "72", "85"),
    "FR52": ("22", "29", "35", "56"),
    "FR53": ("16", "17", "79", "86"),
    "FR61": ("24", "33", "40", "47", "64"),
    "FR62": ("09", "12", "31", "32", "46", "65", "81", "82"),
    "FR63": ("19", "23", "87"),
    "FR71": ("01", "07", "26", "38", "42", "69", "73", "74"),
    "FR72": ("03", "15", "43", "63"),
    "FR81": ("11", "30", "34", "48", "66"),
    "FR82": ("04", "05", "06", "13", "83", "84"),
    "FR83": ("2A", "2B"),
}
# NUTS 2016: new regions, two-level numbering where a region merged several old ones.
_NUTS_2016 = {
    "FR10": ("75", "77", "78", "91", "92", "93", "94", "95"),
    "FRB0": ("18", "28", "36", "37", "41", "45"),
    "FRC1": ("21", "58", "71", "89"),
    "FRC2": ("25", "39", "70", "90"),
    "FRD1": ("14", "50", "61"),
    "FRD2": ("27", "76"),
    "FRE1": ("59", "62"),
    "FRE2": ("02", "60", "80"),
    "FRF1": ("67", "68"),
    "FRF2": ("08", "10", "51", "52"),
    "FRF3": ("54", "55", "57", "88"),
    "FRG0": ("44", "49", "53", "72", "85"),
    "FRH0": ("22", "29", "35", "56"),
    "FRI1": ("24", "33", "40", "47", "64"),
    "FRI2": ("19", "23", "87"),
    "FRI3": ("16", "17", "79", "86"),
    "FRJ1": ("11", "30", "34", "48", "66"),
    "FRJ2": ("09", "12", "31", "32", "46", "65", "81", "82"),
    "FRK1": ("03", "15", "43", "63"),
    "FRK2": ("01", "07", "26", "38", "42", "69", "73", "74"),
    "FRL0": ("04", "05", "06", "13", "83", "84"),
    "FRM0": ("2A", "2B"),
}
_OVERSEAS = {
    "FRA10": "971",
    "FRA20": "972",
    "FRA30": "973",
    "FRA40": "974",
    "FRA50": "976",
    "FRY10": "971",
    "FRY20": "972",
    "FRY30": "973",
    "FRY40": "974",
    "FRY50": "976",
}

NUTS3_DEPARTEMENTS: dict[str, str] = dict(_OVERSEAS)
for _table in (_NUTS_2013, _NUTS_2016):
    for _prefix, _codes in _table.items():
        for _index, _code in enumerate(_codes, start=1):
            NUTS3_DEPARTEMENTS[f"{_prefix}{_index}"] = _code

# EMMA_ID -> département, each pair read in MeteoAlarm's France feed of 2022-12-08 (NUTS3 next to EMMA_ID).
EMMA_DEPARTEMENTS: dict[str, str] = {
    "FR029": "06",
    "FR032": "04",
    "FR033": "05",
    "FR034": "38",
    "FR035": "74",
    "FR036": "73",
}


def nuts3_departement(code: str) -> str | None:
    """ "FR718" -> "74", "FRB05" -> "41", anything else -> None."""
    return NUTS3_DEPARTEMENTS.get(code.strip().upper())


def emma_departement(code: str) -> str | None:
    """A verified MeteoAlarm EMMA_ID -> département ("FR035" -> "74"); unknown ids -> None."""
    return EMMA_DEPARTEMENTS.get(code.strip().upper())
