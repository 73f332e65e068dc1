"""Synthetic receipts as OCR would read them (reading-order text, one row per line, cells apart),
for measuring the memory store at sizes no labelled set has (10,000 documents).

Shaped like the SROIE receipts (../shared/data/sroie_train): a shop name with its legal form, a
registration number, a two- to four-line address, GST and document numbers, date and time, a
cashier, 3-15 item rows with codes, quantities and amounts, totals, tax, rounding, cash and change,
a tax summary and a goodbye, ~1,000-1,400 characters each. Shops are made of syllables (thousands
of names, each printing the same header on every one of its receipts, as a real shop does), items
and streets come from pools, numbers are random: what makes receipts of one shop alike and those
of two shops different is what the similarity index must see.

    from synthetic_receipts import receipts
    for text, answer in receipts(10_000, seed=7): ...
"""

from __future__ import annotations

import random
from collections.abc import Iterator

SYLLABLES = [
    "ka", "mi", "ra", "so", "te", "lu", "na", "pe", "ri", "jo", "ba", "ko", "si", "ta", "wa", "ya", "ng", "ho", "de",
    "ma", "fu", "li", "sa", "tu", "ne", "po", "gi", "an", "en", "un", "ar", "el", "or", "in", "sen", "tan", "lim",
    "kee", "hup", "seng", "hin", "mart", "kedai", "toko",
]  # fmt: skip
FORMS = ("SDN BHD", "SDN. BHD.", "ENTERPRISE", "TRADING", "(M) SDN BHD", "S/B", "BHD", "RESTAURANT")
STREETS = ("JALAN", "JLN", "LORONG", "PERSIARAN", "LEBUH")
PLACES = (
    "TAMAN DAYA", "BANDAR BARU", "SRI PETALING", "SETIA ALAM", "KEPONG", "CHERAS", "PUCHONG", "AMPANG",
    "SUBANG JAYA", "BUKIT BINTANG", "SEREMBAN", "KLANG", "IPOH", "JOHOR BAHRU", "MELAKA", "KAJANG",
)  # fmt: skip
STATES = ("SELANGOR", "JOHOR", "KUALA LUMPUR", "PERAK", "NEGERI SEMBILAN", "MELAKA", "PAHANG")
GOODS = (
    "NASI LEMAK", "TEH TARIK", "KOPI O", "MEE GORENG", "ROTI CANAI", "AIR SIRAP", "CHICKEN RICE", "PAPER A4",
    "PEN BLUE", "STAPLER", "GLUE STICK", "FILE CLEAR", "BATTERY AA", "MINERAL WATER", "BREAD WHITE",
    "EGG GRADE A", "SUGAR 1KG", "FLOUR 1KG", "COOKING OIL", "RICE 5KG", "SOAP BAR", "SHAMPOO", "TISSUE BOX",
    "SCREW 2IN", "HAMMER", "PAINT BRUSH", "WIRE 10M", "TAPE MEASURE", "PLIERS", "BULB LED", "NOTEBOOK",
)  # fmt: skip
CLOSINGS = ("THANK YOU. PLEASE COME AGAIN.", "GOODS SOLD ARE NOT RETURNABLE", "THANK YOU & HAVE A NICE DAY")


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).upper()


def _shop(rng: random.Random) -> dict[str, object]:
    """What one shop prints at the top of every receipt, and how it lays out the rest."""
    address = [f"NO.{rng.randint(1, 300)}, {rng.choice(STREETS)} {_name(rng)} {rng.randint(1, 30)},"]
    address += [f"{rng.choice(PLACES)},"] if rng.random() < 0.7 else []
    address += [f"{rng.randint(10000, 99999)} {rng.choice(PLACES)}, {rng.choice(STATES)}."]
    return {
        "company": f"{_name(rng)} {_name(rng)} {rng.choice(FORMS)}",
        "registration": f"({rng.randint(100000, 999999)}-{rng.choice('ABCDHKMPTUVWX')})",
        "address": address,
        "gst": f"GST ID : {rng.randint(10**11, 10**12 - 1):012d}",
        "phone": f"TEL : 0{rng.randint(3, 9)}-{rng.randint(1000000, 9999999)}",
        "goods": rng.sample(GOODS, 12),
        "label": rng.choice(("TOTAL", "TOTAL AMOUNT", "GRAND TOTAL", "TOTAL (RM)", "NETT TOTAL")),
        "invoice": rng.choice(("INVOICE NO", "DOCUMENT NO", "RECEIPT #", "BILL NO")),
    }


def _receipt(rng: random.Random, shop: dict[str, object]) -> tuple[str, dict[str, str]]:
    rows = [str(shop["company"]), str(shop["registration"]), *shop["address"], str(shop["phone"]), str(shop["gst"])]  # type: ignore[misc]
    rows.append("TAX INVOICE")
    date = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.choice((2017, 2018, 2019))}"
    rows.append(f"{shop['invoice']} : {rng.choice('ABCTD')}{rng.randint(10000000, 99999999)}")
    rows.append(f"DATE : {date}   TIME : {rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}")
    rows.append(f"CASHIER : {_name(rng)}")
    rows.append("QTY   DESCRIPTION   PRICE   AMOUNT")
    subtotal = 0.0
    for good in rng.sample(shop["goods"], rng.randint(3, 12)):  # type: ignore[call-overload]
        quantity, price = rng.randint(1, 5), rng.randint(50, 5000) / 100
        subtotal += quantity * price
        rows.append(f"{rng.randint(10**12, 10**13 - 1)}")
        rows.append(f"{quantity}   {good}   {price:.2f}   {quantity * price:.2f}")
    tax = round(subtotal * 0.06, 2)
    total = round(subtotal + tax, 1)
    cash = float(int(total) + rng.choice((1, 5, 10, 50)))
    rows += [
        f"TOTAL QTY : {rng.randint(3, 30)}",
        f"SUB TOTAL (EXCL GST)   {subtotal:.2f}",
        f"GST 6%   {tax:.2f}",
        f"ROUNDING ADJ   {total - subtotal - tax:.2f}",
        f"{shop['label']}   {total:.2f}",
        f"CASH   {cash:.2f}",
        f"CHANGE   {cash - total:.2f}",
        "GST SUMMARY   AMOUNT(RM)   TAX(RM)",
        f"SR @ 6%   {subtotal:.2f}   {tax:.2f}",
        rng.choice(CLOSINGS),
    ]
    answer = {
        "company": str(shop["company"]),
        "date": date,
        "address": " ".join(shop["address"]),  # type: ignore[arg-type]
        "total": f"{total:.2f}",
    }
    return "\n".join(rows), answer


def receipts(count: int, *, seed: int = 7, shops: int | None = None) -> Iterator[tuple[str, dict[str, str]]]:
    """`count` receipts of `shops` shops (default: one shop per 4 receipts), in a seeded order."""
    rng = random.Random(seed)
    pool = [_shop(rng) for _ in range(shops or max(1, count // 4))]
    for _ in range(count):
        yield _receipt(rng, rng.choice(pool))
