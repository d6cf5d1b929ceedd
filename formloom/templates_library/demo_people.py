"""Made-up companies and people for demo data, Chinese or English, never twice the same."""
from __future__ import annotations

import random

from formloom.platform.errors import FormloomError
from formloom.templates_library.demo_words import (
    AREA_CODES,
    BRANDS,
    CITIES,
    EN_FAMILY,
    EN_FIRST,
    EN_GIVEN,
    EN_PLACES,
    EN_STREETS,
    EN_SUFFIXES,
    EN_TRADES,
    GIVEN,
    SURNAMES,
    TRADES,
    ZH_STREETS,
)


def company(rng: random.Random, chinese: bool, used: set[str]) -> dict:
    """A company not in ``used`` (which it joins): name, short name, industry, region, address."""
    for attempt in range(1000):
        if chinese:
            city, city_py, region, province = rng.choice(CITIES)
            brand, brand_py = rng.choice(BRANDS)
            trade, industry, trade_py = rng.choice(TRADES)
            short = f"{city}{brand}{trade}"
            name = f"{short}有限公司"
            domain = f"{brand_py}-{trade_py}.cn"
            phone = f"+86 {AREA_CODES[city_py]}-{rng.randint(5000, 8999)}-{rng.randint(1000, 9999)}"
            address = f"{province}{rng.choice(ZH_STREETS)}{rng.randint(1, 999)}号"
        else:
            first = rng.choice(EN_FIRST)
            trade, industry = rng.choice(EN_TRADES)
            suffix = rng.choice(EN_SUFFIXES) if attempt < 500 else f"{rng.randint(2, 99)}"
            short = first
            name = f"{first} {trade}" if rng.random() < 0.3 else f"{first} {trade} {suffix}"
            place, region, pattern = rng.choice(EN_PLACES)
            province = place
            domain = f"{first.lower().replace(' ', '')}{trade.lower()}.com"
            phone = "".join(str(rng.randint(0, 9)) if c == "#" else c for c in pattern)
            address = f"{rng.randint(1, 300)} {rng.choice(EN_STREETS)}, {place}"
        if name not in used:
            used.add(name)
            return {"name": name, "short": short, "industry": industry, "region": region, "province": province,
                    "domain": domain, "phone": phone, "address": address}
    raise FormloomError("Too many demo companies asked for: company names ran out.")


def contact_person(rng: random.Random, chinese: bool) -> tuple[str, str, str | None]:
    """A person's name, their e-mail handle and (often) a WeChat ID."""
    if chinese:
        (surname, surname_py), (given, given_py) = rng.choice(SURNAMES), rng.choice(GIVEN)
        return f"{surname}{given}", f"{given_py}.{surname_py}", f"{surname_py}{given_py}{rng.randint(10, 9999)}"
    given, family = rng.choice(EN_GIVEN), rng.choice(EN_FAMILY)
    handle = f"{given}.{family}".lower().replace("ü", "ue")
    return f"{given} {family}", handle, rng.choice([None, f"{handle.replace('.', '_')}{rng.randint(1, 99)}"])


def unique_mobile(rng: random.Random, chinese: bool, used: set[str]) -> str:
    """A mobile number not in ``used`` (which it joins)."""
    while True:
        if chinese:
            number = f"+86 1{rng.choice([35, 38, 39, 58, 86, 88])}-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
        else:
            number = f"+{rng.choice(['65 9', '852 6', '44 7', '1 415-'])}{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        if number not in used:
            used.add(number)
            return number


def unique_email(rng: random.Random, handle: str, firm: dict, used: set[str]) -> str:
    """``handle@firm's domain``, numbered when that address is taken."""
    address = f"{handle}@{firm['domain']}"
    while address in used:
        address = f"{handle}{rng.randint(2, 999)}@{firm['domain']}"
    used.add(address)
    return address
