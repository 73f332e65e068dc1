"""Invented car-park exit tickets, rendered to images in the shared data layout: a document type no
shipped scenario covers, to measure a scenario authored from a few reviewed documents
(benchmarks/authored_scenario.py) against no scenario at all.

    .venv/bin/python benchmarks/make_parking_set.py OUT_DIR [--count 20] [--seed 33]

Writes `OUT_DIR/parking_tickets/images/parking_<nn>.jpg` and `labels/parking_<nn>.json` with the
fields car_park, plate, entry_time, exit_time, duration, amount and ticket_number. What varies is
what real tickets vary: the operator's name with or without its brand line, the title (PARKING
RECEIPT, EXIT TICKET, PAY & DISPLAY), the label words (Entry / Time In / Arrived, Exit / Time Out /
Departed, Paid / Fee / Amount), entry and exit on one row or two, three date forms, the duration
as `3h 38m`, `03:38` or `3 hrs 38 mins`, four currencies, a tariff table or none, VAT or none,
card or cash. Operators, streets and plates are drawn from pools of my own; nothing is copied
from any document. Labels are the text as printed; amounts are plain decimals.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from make_cn_set import Page, photograph

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
OPERATORS = [
    ("KINGSGATE CAR PARK", "Operated by Civic Parking Ltd"),
    ("Riverside Multi-Storey", "CityPark Services"),
    ("HARBOUR VIEW PARKING", "Harbour Estates Pte Ltd"),
    ("St Aldric Street Car Park", "Aldric Council"),
    ("NORTHFIELD PARK & RIDE", "Northfield Transit"),
    ("Greenway Hospital Visitor Parking", "Greenway NHS Trust"),
    ("ELM COURT PARKING", "Elm Court Management Sdn Bhd"),
    ("Plaza Lumiere Parking", "Lumiere Parc SAS"),
]
STREETS = ["Kingsgate Road", "Quay Street", "Marina Way", "Aldric Street", "Station Approach", "Greenway Drive"]
CURRENCIES = ["£", "$", "RM ", "€ "]  # as printed before the amount
TITLES = ["PARKING RECEIPT", "EXIT TICKET", "PAY & DISPLAY", "Car Park Receipt", "TAX INVOICE - PARKING"]
ENTRY_WORDS = ["Entry", "Time In", "Arrived", "ENTRY TIME", "In"]
EXIT_WORDS = ["Exit", "Time Out", "Departed", "EXIT TIME", "Out"]
FEE_WORDS = ["Amount Paid", "TOTAL", "Fee", "PAID", "Parking Fee"]
NUMBER_WORDS = ["Ticket No", "Ticket #", "Receipt No", "TKT", "Ref"]


def plate(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPRSTVWXY"
    forms = [
        lambda: f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(10, 79)} {''.join(rng.sample(letters, 3))}",
        lambda: f"{''.join(rng.sample(letters, 3))} {rng.randint(1000, 9999)}",
        lambda: f"{rng.randint(1, 9)}{''.join(rng.sample(letters, 3))}{rng.randint(100, 999)}",
    ]
    return rng.choice(forms)()


def stamp(rng: random.Random, form: int, y: int, m: int, d: int, minutes: int) -> str:
    date = [f"{d:02d}/{m:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{d:02d} {MONTHS[m - 1]} {y}"][form]
    return f"{date} {minutes // 60:02d}:{minutes % 60:02d}"


def duration_text(rng: random.Random, minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return rng.choice([f"{hours}h {rest:02d}m", f"{hours:02d}:{rest:02d}", f"{hours} hrs {rest} mins"])


def ticket(rng: random.Random) -> Page:
    name, operator = rng.choice(OPERATORS)
    sign = rng.choice(CURRENCIES)
    y, m, d, form = rng.choice([2025, 2026]), rng.randint(1, 12), rng.randint(1, 28), rng.randrange(3)
    entry = rng.randint(6 * 60, 15 * 60)
    stay = rng.randint(20, 8 * 60)
    rate = rng.choice([1.20, 1.50, 2.00, 2.40])
    amount = round(rate * max(1, -(-stay // 60)), 2)
    number = rng.choice(
        [f"T-{rng.randint(1, 99999):06d}", f"{rng.randint(10**6, 10**7 - 1)}", f"PK{y}{rng.randint(1000, 9999)}"]
    )
    car = plate(rng)
    entry_at, exit_at = stamp(rng, form, y, m, d, entry), stamp(rng, form, y, m, d, entry + stay)
    money = f"{sign}{amount:.2f}"
    page = Page(width=560, size=22)
    page.row((40, name), bold=True)
    if rng.random() < 0.6:
        page.row((40, operator))
    page.row((40, f"{rng.randint(1, 250)} {rng.choice(STREETS)}"))
    page.row((140, rng.choice(TITLES)))
    page.row((40, f"{rng.choice(NUMBER_WORDS)}: {number}"), (360, f"Lane {rng.randint(1, 6)}"))
    page.row((40, f"{rng.choice(['Vehicle', 'Plate', 'Reg', 'VRN'])}: {car}"))
    entry_word, exit_word = rng.choice(ENTRY_WORDS), rng.choice(EXIT_WORDS)
    if rng.random() < 0.7:
        page.row((40, f"{entry_word}: {entry_at}"))
        page.row((40, f"{exit_word}: {exit_at}"))
    else:
        page.row((40, entry_word), (220, entry_at))
        page.row((40, exit_word), (220, exit_at))
    duration = duration_text(rng, stay)
    page.row((40, rng.choice(["Duration", "Stay", "Length of stay"])), (300, duration))
    if rng.random() < 0.5:
        page.row((40, f"Tariff: {sign}{rate:.2f} per hour (or part)"))
    page.row((40, rng.choice(FEE_WORDS)), (360, money), bold=True)
    if rng.random() < 0.4:
        page.row((40, "incl. VAT 20%"), (360, f"{sign}{amount / 6:.2f}"))
    page.row((40, rng.choice([f"Card ****{rng.randint(1000, 9999)}", "Cash", "Contactless", "App payment"])))
    page.row((100, rng.choice(["Thank you, drive safely", "Keep this ticket for your records", "Have a nice day"])))
    page.labels = {
        "car_park": name,
        "plate": car,
        "entry_time": entry_at,
        "exit_time": exit_at,
        "duration": duration,
        "amount": f"{amount:.2f}",
        "ticket_number": number,
    }
    return page


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--seed", type=int, default=33)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    folder = args.out / "parking_tickets"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        page, doc_id = ticket(rng), f"parking_{i:02d}"
        photograph(page.render(), rng).save(folder / "images" / f"{doc_id}.jpg", quality=80)
        labels = json.dumps(page.labels, ensure_ascii=False, indent=1)
        (folder / "labels" / f"{doc_id}.json").write_text(labels + "\n", encoding="utf-8")
    print(f"{folder}: {args.count} documents")


if __name__ == "__main__":
    main()
