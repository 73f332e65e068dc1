"""Typed requests for chatocr: pydantic models of what to extract (see docs/typed.md).

    chatocr extract samples/receipt.jpg --schema samples/typed_models.py:Receipt --format values
    chatocr eval ../shared/data/sroie_train ../shared/data/cn_train_ticket \\
        --schema samples/typed_models.py:SroieReceipt --schema samples/typed_models.py:TrainTicket

SroieReceipt and TrainTicket are the built-in retail_receipt and train_ticket scenarios' fields
for the labelled sets' keys (made with `chatocr scenarios model`, then trimmed): the same
descriptions, so the typed path asks what the YAML path asks.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

# Answers that are never a receipt's company (retail_receipt.yaml's `never`, as "x-never"): the
# document's title, or a legal form alone (the second line of a name printed over two).
NOT_A_COMPANY = {
    "x-never": [
        r"((simplified|full|official|abbreviated|retail|sales|cash|tax|gst|sst|vat)\s+)*"
        r"(tax\s+invoice|invoice|receipt|bill|sales?|slip|docket|order)",
        r"((co\.?|company|sdn\.?|bhd\.?|berhad|ltd\.?|limited|pte\.?|plc|inc\.?|llc|gmbh|\([a-z]\)|\(malaysia\)|&)\s*)+",
    ],
    "x-trim": [  # edge lines never part of a name or address (retail_receipt.yaml's `trim`)
        r"\(\s*\d{4,14}\s*(-?\s*[a-z])?\s*\)|\d{4,14}\s*-\s*[a-z]",
        r"((co(mpany)?\.?\s*)?(reg(istration)?|gst|sst|vat|tax|tin|brn|roc)\.?(\s*(reg(istration)?|id|no)\.?)*"
        r"\s*([:.#]\s*)?(?=[a-z0-9-]*\d)[a-z0-9-]+\s*)+",
        r"((tel|telephone|phone|fax|h/?p|mobile|mob|hotline|whatsapp)\.?(\s*no\.?)?\s*([:.]\s*)?"
        r"\+?[\d(][\d()./-]*(\s+[\d()./-]+)*\s*)+",
        r"(www\.|https?://)\S+|\S+@\S+\.\S+",
    ],
}
NOT_PART_OF_AN_ADDRESS = {"x-trim": NOT_A_COMPANY["x-trim"]}


class LineItem(BaseModel):
    description: str = Field(description="Item name as printed")
    quantity: float | None = Field(None, description="Quantity when printed")
    amount: Decimal = Field(description="Line total")


class Receipt(BaseModel):
    """A shop receipt with its line items."""

    company: str = Field(
        description="Name of the shop, restaurant or business that issued the receipt", json_schema_extra=NOT_A_COMPANY
    )
    date: dt.date = Field(description="Date of the purchase, as printed")
    total: Decimal = Field(description="Final total paid, after tax and rounding")
    items: list[LineItem] = Field([], description="Purchased lines")


class SroieReceipt(BaseModel):
    """Retail receipt (the SROIE labels' fields, in the labels' order: the order `chatocr eval`
    asks the YAML path for them, so both paths send the same conversation)."""

    company: str = Field(
        description="Name of the shop, restaurant or business that issued the receipt", json_schema_extra=NOT_A_COMPANY
    )
    date: dt.date = Field(description="Date of the purchase, as printed")
    address: str | None = Field(
        None,
        description="Address of the shop, lines joined with single spaces",
        json_schema_extra=NOT_PART_OF_AN_ADDRESS,
    )
    total: Decimal = Field(description="Final total paid, after tax and rounding")


Grade = Literal[
    "商务座",
    "特等座",
    "优选一等座",
    "一等座",
    "二等座",
    "一等软座",
    "二等软座",
    "软座",
    "硬座",
    "无座",
    "高级软卧",
    "软卧",
    "硬卧",
    "动卧",
    "高级动卧",
    "一等卧",
    "二等卧",
    "新空调软座",
    "新空调硬座",
    "新空调软卧",
    "新空调硬卧",
    "新空调高级软卧",
]


class TrainTicket(BaseModel):
    """火车票 (the cn_train_ticket labels' fields)."""

    ticket_num: str = Field(description="票号，车票左上角红色编号，字母加数字，如“Z095432”")
    starting_station: str = Field(description="出发站，含“站”字，如“上海虹桥站”")
    destination_station: str = Field(description="到达站，含“站”字，如“南京南站”")
    train_num: str = Field(description="车次，如“G7316”“K1158”")
    date: dt.date = Field(description="发车日期和时间，照抄到“开”字为止，如“2019年05月12日08:35开”")
    seat_number: str = Field(description="车厢和座位号，如“05车12F号”“12车无座”“10车015号中铺”")
    ticket_grade: Grade = Field(description="席别，如“二等座”“一等座”“新空调硬座”“新空调硬卧”")
    ticket_price: Decimal = Field(description="票价，只填数字，不含“￥”和“元”：票面“￥139.5元”填“139.5”")
    name: str | None = Field(None, description="乘车人姓名，通常紧跟在打码的身份证号（含“****”）之后")
