"""Invented shop receipts from countries SROIE lacks, rendered to images in the shared data layout,
to measure `retail_receipt` end to end beyond Malaysia (../shared/data's receipts are all Malaysian).

    .venv/bin/python benchmarks/make_receipt_set.py OUT_DIR [--per-country 4] [--seed 101] [--rough]
    .venv/bin/chatocr eval OUT_DIR/receipts_intl -s retail_receipt --llm local --ocr rapid

Writes one set (`receipts_intl/images/<country>_<n>.jpg`, `receipts_intl/labels/<...>.json`) with the
fields company, date, address and total. Countries and what they vary: the United States
(month-first dates, `$`, sales tax added, `Jan 05, 2026`), the United Kingdom (postcodes on their own
line, VAT included), Australia, Canada (ISO dates), Singapore (`13-Jan-2026`, `S$`), Germany, France
and the Netherlands (decimal commas, `1.234,56 €`, dates with dots, the labels in the country's
language). Every layout draws a header line or not, one or two fields per row, the time glued
after the date or in its own cell, cash with change or a card. Shops, streets and goods are pools of
my own, not copied from any document. Labels are the text as printed, amounts as plain decimals.

These documents are mine and made to be read: they measure whether the pipeline reads other
countries' forms (dates, amounts, addresses), not how hard real photographs are.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from make_cn_set import Page, photograph, rough_photograph

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
GOODS = [
    ("Coffee 12oz", 3.75), ("Blueberry Muffin", 2.95), ("Hex Bolts 10pk", 4.49), ("Duct Tape", 6.99),
    ("Bananas 1.2 lb", 0.83), ("Whole Milk 1gal", 4.29), ("Sourdough Loaf", 5.50), ("Paperback novel", 12.99),
    ("Cod & Chips", 11.40), ("Flat White", 4.20), ("Ibuprofen 200mg", 7.49), ("Rain Jacket", 89.00),
    ("Pad Thai", 13.90), ("Iced Tea", 2.50), ("AA Batteries 4pk", 5.99), ("Avocado", 1.25),
]  # fmt: skip
ENGLISH_SHOPS = [
    ("Maple Street Hardware", "LLC"), ("Blue Heron Cafe", ""), ("Greenleaf Market", "Inc."),
    ("Copper Kettle Bakery", "Ltd"), ("Harbourside Fish & Chips", "Pty Ltd"), ("Northgate Pharmacy", ""),
    ("Tall Pines Outfitters", "Co."), ("Red Lantern Noodle House", "Pte Ltd"), ("Westbrook Books", "Ltd"),
]  # fmt: skip
EUROPEAN_SHOPS = [
    ("Bäckerei Sonnenkorn", "GmbH"), ("Café du Coin", "SARL"), ("Buchhandlung Lesezeichen", "GmbH"),
    ("Drogisterij De Linde", "B.V."), ("Épicerie Martin", ""), ("Getränkemarkt Nord", "GmbH & Co. KG"),
]  # fmt: skip
ENGLISH_WORDS = ("Subtotal", ["TOTAL", "Total", "AMOUNT DUE", "BALANCE DUE", "Total to pay"], "CASH", "CHANGE")


def dollars(sign: str) -> Callable[[float], str]:
    return lambda v: f"{sign}{v:,.2f}"


def euros(before: bool) -> Callable[[float], str]:
    def text(v: float) -> str:
        number = f"{v:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
        return f"€ {number}" if before else f"{number} €"

    return text


@dataclass(frozen=True)
class Country:
    code: str
    shops: list[tuple[str, str]]
    addresses: list[list[str]]  # the lines of each address
    dates: list[str]  # str.format forms over d, m, y, yy, mon
    money: Callable[[float], str]
    tax: tuple[str, float]  # its label; the rate added to the subtotal, or 0 when prices include it
    words: tuple[str, list[str], str, str]  # subtotal, the total's labels, cash, change


COUNTRIES = [
    Country(
        "US", ENGLISH_SHOPS,
        [["1482 Oak Avenue", "Springfield, IL 62704"], ["2300 Pacific Hwy, Suite 4", "San Diego, CA 92101"],
         ["19 Elm Street", "Burlington, VT 05401"]],
        ["{m:02d}/{d:02d}/{y}", "{mon} {d:02d}, {y}", "{m}/{d}/{yy:02d}"], dollars("$"), ("Sales Tax", 0.08),
        ENGLISH_WORDS,
    ),
    Country(
        "UK", ENGLISH_SHOPS,
        [["14 High Street", "Harrogate", "HG1 1AB"], ["Unit 3, Riverside Retail Park", "Norwich NR1 1WR"]],
        ["{d:02d}/{m:02d}/{y}", "{d:02d} {mon} {y}", "{d:02d}-{m:02d}-{yy:02d}"], dollars("£"), ("VAT 20% incl.", 0),
        ENGLISH_WORDS,
    ),
    Country(
        "AU", ENGLISH_SHOPS, [["Shop 12, 45 George St", "Parramatta NSW 2150"], ["88 Rundle Mall", "Adelaide SA 5000"]],
        ["{d:02d}/{m:02d}/{y}", "{d} {mon} {y}"], dollars("$"), ("GST incl.", 0), ENGLISH_WORDS,
    ),
    Country(
        "CA", ENGLISH_SHOPS, [["615 Granville St", "Vancouver, BC V6C 1X6"], ["40 King St W", "Toronto, ON M5H 3Y2"]],
        ["{y}-{m:02d}-{d:02d}", "{m:02d}/{d:02d}/{y}"], dollars("$"), ("GST/HST", 0.13), ENGLISH_WORDS,
    ),
    Country(
        "SG", ENGLISH_SHOPS,
        [["Blk 261 Waterloo Street #01-23", "Singapore 180261"], ["3 Tampines Central 1 #02-10", "Singapore 529540"]],
        ["{d:02d}/{m:02d}/{y}", "{d:02d}-{mon}-{y}"], dollars("S$"), ("GST 9%", 0.09), ENGLISH_WORDS,
    ),
    Country(
        "DE", EUROPEAN_SHOPS, [["Hauptstraße 12", "10115 Berlin"], ["Königsallee 27", "40212 Düsseldorf"]],
        ["{d:02d}.{m:02d}.{y}", "{d:02d}.{m:02d}.{yy:02d}"], euros(before=False), ("MwSt 19% enth.", 0),
        ("Zwischensumme", ["SUMME", "Summe EUR", "Gesamt"], "BAR", "Rückgeld"),
    ),
    Country(
        "FR", EUROPEAN_SHOPS, [["14 rue de la République", "69002 Lyon"], ["3 place du Marché", "33000 Bordeaux"]],
        ["{d:02d}/{m:02d}/{y}", "{d:02d}-{m:02d}-{y}"], euros(before=False), ("dont TVA 20%", 0),
        ("Sous-total", ["TOTAL", "Total TTC", "NET A PAYER"], "ESPECES", "RENDU"),
    ),
    Country(
        "NL", EUROPEAN_SHOPS, [["Kalverstraat 92", "1012 PH Amsterdam"], ["Oudegracht 140", "3511 AZ Utrecht"]],
        ["{d:02d}-{m:02d}-{y}", "{d:02d}.{m:02d}.{y}"], euros(before=True), ("BTW 21% incl.", 0),
        ("Subtotaal", ["TOTAAL", "Te betalen"], "CONTANT", "WISSELGELD"),
    ),
]  # fmt: skip


def receipt(rng: random.Random, country: Country) -> Page:
    name, form = rng.choice(country.shops)
    company = f"{name} {form}" if form and rng.random() < 0.6 else name
    company = company.upper() if rng.random() < 0.5 else company
    address = rng.choice(country.addresses)
    y, m, d = rng.choice([2024, 2025, 2026]), rng.randint(1, 12), rng.randint(1, 28)
    date = rng.choice(country.dates).format(d=d, m=m, y=y, yy=y % 100, mon=MONTHS[m - 1])
    hour, minute = rng.randint(7, 21), rng.randint(0, 59)
    twelve = f"{(hour - 1) % 12 + 1}:{minute:02d} {'AP'[hour >= 12]}M"
    time = f"{hour:02d}:{minute:02d}" if rng.random() < 0.5 else twelve
    subtotal_word, total_words, cash_word, change_word = country.words
    tax_word, rate = country.tax

    page = Page(width=600, size=22)
    if rng.random() < 0.35:
        page.row((150, rng.choice(["WELCOME", "*** THANK YOU FOR SHOPPING ***", f"Store #{rng.randint(100, 999)}"])))
    page.row((40, company), bold=True)
    for line in address:
        page.row((40, line))
    phone = f"({rng.randint(200, 999)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    page.row((40, f"{rng.choice(['Tel', 'Phone', 'Ph'])}: {phone}"))
    if rng.random() < 0.5:
        page.row((40, f"Date: {date}"), (360, f"Time: {time}"))
    else:
        page.row((40, f"{date}  {time}"), (380, f"Trans #{rng.randint(1000, 99999)}"))
    page.row((40, "-" * 38))
    subtotal = 0.0
    for good, price in rng.sample(GOODS, rng.randint(2, 6)):
        quantity = rng.choice([1, 1, 1, 2, 3])
        subtotal += quantity * price
        page.row((40, (f"{quantity} x " if quantity > 1 else "") + good), (440, country.money(quantity * price)))
    subtotal = round(subtotal, 2)
    tax = round(subtotal * rate, 2)
    total = round(subtotal + tax, 2)
    page.row((40, "-" * 38))
    page.row((40, subtotal_word), (440, country.money(subtotal)))
    if rate:
        page.row((40, tax_word), (440, country.money(tax)))
    page.row((40, rng.choice(total_words)), (440, country.money(total)), bold=True)
    if not rate:  # the tax a price includes, printed after the total
        page.row((40, tax_word), (440, country.money(round(total / 6, 2))))
    if rng.random() < 0.5:
        paid = float(int(total) + rng.choice([1, 5, 10]))
        page.row((40, cash_word), (440, country.money(paid)))
        page.row((40, change_word), (440, country.money(paid - total)))
    else:
        card = rng.choice(["VISA ****", "MASTERCARD ****", "Card ****"]) + str(rng.randint(1000, 9999))
        page.row((40, card), (440, country.money(total)))
        page.row((40, f"Auth code: {rng.randint(100000, 999999)}"))
    page.row((120, rng.choice(["Thank you, come again!", "Returns within 30 days with receipt", "Have a great day"])))
    page.labels = {"company": company, "date": date, "address": " ".join(address), "total": f"{total:.2f}"}
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-country", type=int, default=4)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--rough", action="store_true", help="worse photos (see make_cn_set.py)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = args.out / "receipts_intl"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for country in COUNTRIES:
        for i in range(args.per_country):
            page, doc_id = receipt(rng, country), f"{country.code.lower()}_{i:02d}"
            shot = (rough_photograph if args.rough else photograph)(page.render(), rng)
            shot.save(folder / "images" / f"{doc_id}.jpg", quality=60 if args.rough else 80)
            labels = json.dumps(page.labels, ensure_ascii=False, indent=1)
            (folder / "labels" / f"{doc_id}.json").write_text(labels + "\n", encoding="utf-8")
    print(f"{folder}: {args.per_country * len(COUNTRIES)} documents")


if __name__ == "__main__":
    main()
