"""The Chinese everyday-document scenarios (小票, 出租车发票, 定额发票): they load, their examples are
grounded, and documents unlike their examples (written here, not copied from any dataset) are
routed to them by the local pre-score, while English receipts still go to retail_receipt."""

from __future__ import annotations

import asyncio

import pytest

from chatocr.extraction.routing import Router
from chatocr.scenarios import load_scenarios
from chatocr.scenarios.model import ungrounded_example_values

# Invented documents, different shops/cities/layouts from the scenario examples.
DOCUMENTS = {
    "cn_receipt": """\
美佳便利店（滨江二店）
南京市建邺区滨江大道66号
收银台:01 收银员:王芳
流水号:NJ20240611083022
2024-06-11 08:30:22
商品            数量    金额
康师傅红烧牛肉面  2     9.00
伊利纯牛奶250ml   1     3.50
合计：12.50
支付宝支付：12.50
谢谢惠顾，欢迎再次光临
""",
    "taxi_receipt": """\
重庆市出租汽车专用发票
发票代码 150001923301
发票号码 55102987
车号 渝A·T8812
证号 330109
日期 2024-02-19
上车 13:10 下车 13:38
单价 2.50元
里程 10.8km
等候 00:03:30
金额 38.00元
""",
    "quota_invoice": """\
通用定额发票
发票联
国家税务总局江苏省税务局监制
发票代码 132001990511
发票号码 30021877
贰拾元
¥20.00
开票单位：苏州市姑苏区平江停车场
""",
}

ENGLISH_RECEIPT = """\
GREENLEAF MART SDN BHD
NO 8, JALAN BUNGA RAYA, 75100 MELAKA
TAX INVOICE
DATE: 03/04/2022 TIME: 17:45
ITEM QTY AMOUNT
MILO 1KG 1 18.90
SUBTOTAL 18.90
TOTAL 18.90
CASH 20.00
CHANGE 1.10
THANK YOU
"""


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(load_scenarios(include_env=False))


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_new_scenarios_load_grounded(name: str) -> None:
    scenario = load_scenarios(include_env=False).get(name)
    assert scenario.language == "zh"
    assert len(scenario.examples) >= 3
    assert ungrounded_example_values(scenario) == []


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_chinese_documents_route_to_their_scenario(router: Router, name: str) -> None:
    route, scenario, calls = asyncio.run(router.route(DOCUMENTS[name], None, classify=False))
    assert calls == []
    assert route.mode == "prescore", route.reason
    assert scenario is not None and scenario.name == name


def test_english_receipt_still_routes_to_retail_receipt(router: Router) -> None:
    route, scenario, _ = asyncio.run(router.route(ENGLISH_RECEIPT, None, classify=False))
    assert scenario is not None and scenario.name == "retail_receipt", route.reason


GERMAN_RECEIPT = """Getränkemarkt Nord GmbH
Königsallee 27
40212 Düsseldorf
Datum: 05.03.2026    Zeit: 17:20
Mineralwasser 12x1,0l    11,80 €
Pfand    3,30 €
SUMME    15,10 €
MwSt 19% enth.    2,41 €
BAR    20,00 €
Rückgeld    4,90 €
"""


def test_a_chinese_scenario_is_no_candidate_for_a_text_without_chinese(router: Router) -> None:
    # Before, a German receipt's pre-score was unsure and the classifier, among its four best
    # candidates, picked the Chinese shop receipt (购物小票).
    ranked = router.prescore(GERMAN_RECEIPT)
    languages = {router.library.get(name).language for name, _ in ranked}
    assert languages == {"en"}
    assert [name for name, _ in ranked] == ["retail_receipt"]  # the only English one but generic
    # A stray character or two (a logo read as 包) does not make it Chinese; a Chinese text keeps them all.
    assert {router.library.get(n).language for n, _ in router.prescore(GERMAN_RECEIPT + "包口")} == {"en"}
    assert "cn_receipt" in {name for name, _ in router.prescore(DOCUMENTS["cn_receipt"])}
