"""The Chinese scenarios for real: documents written here (invented, not from any dataset), rendered
with a CJK font, read by RapidOCR and answered by the local Qwen model, routed by the pre-score
(`scenario="auto"`). Slow (about 15-40 s each on 2 cores); CI runs them.

benchmarks/make_cn_set.py makes sets of such documents for `chatocr eval` (docs/evaluation.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageFilter

from chatocr import ChatOCR
from tests.ocr.helpers import render

TAXI = [
    (40, 30, "哈尔滨市出租汽车专用发票"),
    (40, 90, "发票代码 123011870452"),
    (40, 140, "发票号码 06617390"),
    (40, 190, "车号 黑A·E3157"),
    (40, 240, "证号 518823"),
    (40, 290, "日期 2025年03月02日"),
    (40, 340, "上车 06:48"),
    (300, 340, "下车 07:09"),
    (40, 390, "单价 2.10元"),
    (40, 440, "里程 8.4km"),
    (40, 490, "金额 ￥24.60元"),
]

# The fully digital e-invoice (数电票): buyer and seller side by side on the same rows, so which
# is which is only where they sit.
DIGITAL_INVOICE = [
    (480, 30, "电子发票（普通发票）"),
    (960, 80, "发票号码：25317000000048812367"),
    (960, 120, "开票日期：2025年04月11日"),
    (40, 170, "购 名称：宁波海曙晨光摄影工作室"),
    (700, 170, "销 名称：杭州青藤软件开发有限公司"),
    (40, 210, "买 纳税人识别号：92330203MA2H7TQX4B"),
    (700, 210, "售 纳税人识别号：91330106MA27W1K8XJ"),
    (40, 270, "项目名称"),
    (600, 270, "金额"),
    (800, 270, "税率"),
    (1000, 270, "税额"),
    (40, 310, "*信息技术服务*软件维护费"),
    (600, 310, "1886.79"),
    (800, 310, "6%"),
    (1000, 310, "113.21"),
    (40, 360, "价税合计（大写） 贰仟圆整"),
    (800, 360, "（小写）¥2000.00"),
]


@pytest.mark.slow
def test_a_taxi_receipt_photo_routed_and_read(tmp_path: Path) -> None:
    photo = render(TAXI, size=(560, 560), text_size=26).rotate(1.2, expand=True, fillcolor="white")
    path = tmp_path / "taxi.jpg"
    photo.filter(ImageFilter.GaussianBlur(0.6)).save(path, quality=80)
    ocr = ChatOCR(llm="local", ocr="rapid", ocr_cache_dir=str(tmp_path / "ocr"))
    result = ocr.extract(path, keys=["invoice_number", "plate_number", "date", "total"], scenario="auto")
    assert result.ok, result.error
    assert result.scenario == "taxi_receipt" and result.route is not None and result.route.mode == "prescore"
    assert result.values["invoice_number"] == "06617390"
    assert result.values["plate_number"] == "黑A·E3157"
    assert result.values["date"] == "2025年03月02日"  # the page's form, normalised beside it
    assert result.fields["date"].normalized == "2025-03-02"
    assert result.fields["total"].normalized == "24.60"
    assert all(result.fields[name].status == "grounded" for name in result.values)


@pytest.mark.slow
def test_a_digital_e_invoice_pdf_keeps_buyer_and_seller_apart(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    render(DIGITAL_INVOICE, size=(1400, 420), text_size=22).save(path, "PDF", resolution=150)
    ocr = ChatOCR(llm="local", ocr="rapid", ocr_cache_dir=str(tmp_path / "ocr"))
    keys = ["invoice_type", "invoice_number", "buyer_name", "seller_name", "total_amount"]
    result = ocr.extract(path, keys=keys, scenario="auto")
    assert result.ok, result.error
    assert result.scenario == "vat_invoice"
    assert result.values["invoice_type"] == "电子发票（普通发票）"
    assert result.values["invoice_number"] == "25317000000048812367"
    assert result.values["buyer_name"] == "宁波海曙晨光摄影工作室"
    assert result.values["seller_name"] == "杭州青藤软件开发有限公司"
    assert result.fields["total_amount"].normalized == "2000.00"
