"""Invented Chinese everyday documents, rendered to images in the shared data layout, to measure the
Chinese scenarios end to end (../shared/data has no 小票, taxi receipt, 定额发票 or e-invoice).

    .venv/bin/python benchmarks/make_cn_set.py OUT_DIR [--per-set 5] [--seed 7]
    .venv/bin/chatocr eval OUT_DIR/cn_receipt_synth OUT_DIR/taxi_receipt_synth \
        OUT_DIR/quota_invoice_synth OUT_DIR/vat_einvoice_synth --llm local --ocr rapid

Writes four sets (`<set>/images/<id>.jpg|.pdf`, `<set>/labels/<id>.json`), each label key a field
of the scenario the set is named after. Every shop, person, address and number is drawn at random
from the pools below; none is copied from the scenarios' examples or from ../shared/data. The
layouts vary the things a real document varies (label words, date forms, one or two fields per
row, a discount line, a header above the shop's name). Receipts and tickets are rendered as a
slightly rotated, blurred JPEG photo of paper; the e-invoice as a one-page PDF, as e-invoices
arrive. `--rough` photographs every document worse (tilted up to 3.5 degrees, at 55-70% of the
size, unevenly lit, noisy, JPEG quality 60), the e-invoices as printed and photographed. The
labels are the text as printed, except amounts (compared as numbers).

These documents are mine and made to be read: they measure whether the scenarios work end to end
on documents they have never seen, not how hard real photographs are.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

from chatocr.checks import uscc_check_character

FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"

PLACES = [
    ("湖北省", "武汉", "洪山区", ["珞喻路", "雄楚大道", "光谷大道"], "鄂A"),
    ("陕西省", "西安", "雁塔区", ["小寨东路", "长安南路", "科技路"], "陕A"),
    ("湖南省", "长沙", "岳麓区", ["麓山南路", "桐梓坡路", "枫林三路"], "湘A"),
    ("山东省", "济南", "历下区", ["泉城路", "经十路", "解放路"], "鲁A"),
    ("福建省", "厦门", "思明区", ["中山路", "湖滨南路", "莲前西路"], "闽D"),
    ("辽宁省", "沈阳", "和平区", ["太原街", "南京北街", "三好街"], "辽A"),
    ("云南省", "昆明", "五华区", ["青年路", "人民中路", "翠湖南路"], "云A"),
    ("河南省", "郑州", "金水区", ["花园路", "农业路", "文化路"], "豫A"),
]
SHOPS = [
    "万家福超市",
    "鲜果时光",
    "益康大药房",
    "禾木茶坊",
    "便民惠生活超市",
    "金穗面包坊",
    "一品鲜水饺馆",
    "乐购多便利店",
]
GOODS = [
    ("矿泉水550ml", 2.00),
    ("全麦吐司", 12.80),
    ("酸奶200g", 6.50),
    ("苹果(斤)", 7.98),
    ("抽纸3包", 15.90),
    ("维生素C片", 28.00),
    ("珍珠奶茶(大)", 16.00),
    ("猪肉水饺(份)", 22.00),
    ("鸡蛋10枚", 13.50),
    ("薯片75g", 8.90),
    ("洗衣液2kg", 39.90),
    ("柠檬茶", 5.00),
    ("牙膏120g", 11.50),
    ("红枣夹核桃", 25.80),
]
BUYERS = [
    "武汉星河信息技术有限公司",
    "陕西青禾文化传媒有限公司",
    "长沙远帆物流有限公司",
    "济南合众机电设备有限公司",
    "厦门蓝湾贸易有限公司",
]
SELLERS = [
    "昆明云岭办公用品有限公司",
    "郑州中原印务有限公司",
    "沈阳北方餐饮管理有限公司",
    "湖南湘江酒店管理有限公司",
    "福建闽海科技服务有限公司",
]
SERVICES = [
    ("*印刷品*宣传册", "本", 200, 3.5, 0.13),
    ("*餐饮服务*餐费", "次", 1, 860.0, 0.06),
    ("*住宿服务*住宿费", "天", 3, 328.0, 0.06),
    ("*办公用品*打印纸", "箱", 4, 135.0, 0.13),
]

DIGITS = "零壹贰叁肆伍陆柒捌玖"


def money_in_words(amount: float, yuan: str = "圆") -> str:
    """The capitalised amount as Chinese invoices print it (叁佰贰拾圆整, 壹仟零伍拾圆伍角)."""
    cents = round(amount * 100)
    whole, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    out, zero = "", False
    for value, unit in ((whole // 10000, "万"), (whole % 10000, "")):
        if value == 0:
            zero = bool(out)
            continue
        for power, name in ((1000, "仟"), (100, "佰"), (10, "拾"), (1, "")):
            d = value // power % 10
            if d == 0:
                zero = bool(out)
                continue
            out += ("零" if zero else "") + DIGITS[d] + name
            zero = False
        out += unit
    out = (out or "零") + yuan
    if jiao == 0 and fen == 0:
        return out + "整"
    if jiao:
        out += DIGITS[jiao] + "角"
    elif fen:
        out += "零"
    return out + (DIGITS[fen] + "分" if fen else "")


@dataclass
class Page:
    """Rows of (x, text) pieces on a sheet of a given width; the labels the page should yield."""

    width: int
    size: int = 24
    rows: list[list[tuple[int, str]]] = field(default_factory=list)
    bold_rows: set[int] = field(default_factory=set)
    labels: dict[str, str | None] = field(default_factory=dict)

    def row(self, *pieces: tuple[int, str], bold: bool = False) -> None:
        if bold:
            self.bold_rows.add(len(self.rows))
        self.rows.append(list(pieces))

    def render(self) -> Image.Image:
        step = int(self.size * 1.6)
        image = Image.new("RGB", (self.width, step * (len(self.rows) + 2)), (250, 249, 244))
        draw = ImageDraw.Draw(image)
        regular, bold = ImageFont.truetype(FONT, self.size), ImageFont.truetype(BOLD, self.size + 4)
        for i, pieces in enumerate(self.rows):
            for x, text in pieces:
                face = bold if i in self.bold_rows else regular
                draw.text((x, step * (i + 1)), text, fill=(30, 30, 30), font=face)
        return image


def date_text(rng: random.Random) -> tuple[str, str]:
    """A date as printed, in one of the forms receipts use, and the time of day."""
    y, m, d = rng.choice([2023, 2024, 2025]), rng.randint(1, 12), rng.randint(1, 28)
    form = rng.choice(["{y}-{m:02d}-{d:02d}", "{y}/{m:02d}/{d:02d}", "{y}年{m:02d}月{d:02d}日", "{y}.{m:02d}.{d:02d}"])
    return form.format(y=y, m=m, d=d), f"{rng.randint(7, 22):02d}:{rng.randint(0, 59):02d}"


def cn_receipt(rng: random.Random) -> Page:
    _, city, district, roads, _ = rng.choice(PLACES)
    shop = rng.choice(SHOPS) + f"（{rng.choice(roads)[:-1]}店）"
    address = f"{city}市{district}{rng.choice(roads)}{rng.randint(3, 399)}号"
    date, time = date_text(rng)
    seconds = f"{time}:{rng.randint(0, 59):02d}"
    number = f"{rng.choice(['', 'XS', 'P'])}{rng.randint(10**9, 10**10 - 1)}"
    page = Page(width=560, size=22)
    if rng.random() < 0.5:
        page.row((200, "欢迎光临"))
    page.row((40, shop), bold=True)
    page.row((40, rng.choice(["地址：", "门店地址：", ""]) + address))
    page.row((40, f"电话：0{rng.randint(10, 99)}-{rng.randint(8 * 10**6, 9 * 10**6 - 1)}"))
    label = rng.choice(["单号", "流水号", "小票号"])
    page.row((40, f"收银员：{rng.randint(1, 40):03d}"), (300, f"机号：{rng.randint(1, 9):02d}"))
    page.row((40, f"{label}：{number}"))
    if rng.random() < 0.5:
        page.row((40, f"{date} {seconds}"))
    else:
        page.row((40, f"日期：{date}"), (330, f"时间：{seconds}"))
    page.row((40, "商品"), (300, "数量"), (420, "金额"))
    total, count = 0.0, 0
    for name, price in rng.sample(GOODS, rng.randint(2, 5)):
        qty = rng.randint(1, 3)
        total, count = total + qty * price, count + qty
        page.row((40, name), (320, str(qty)), (420, f"{qty * price:.2f}"))
    discount = rng.choice([0.0, 0.0, round(total * 0.1, 1)])
    due = round(total - discount, 2)
    page.row((40, f"件数：{count}"), (300, f"合计：{total:.2f}"))
    if discount:
        page.row((40, "会员优惠"), (420, f"-{discount:.2f}"))
        page.row((40, "应收："), (420, f"{due:.2f}"))
    payment = rng.choice(["微信支付", "支付宝", "现金", "银联卡"])
    paid = float(int(due) + 1) if payment == "现金" else due
    page.row((40, f"{payment}："), (420, f"{paid:.2f}"))
    if payment == "现金":
        page.row((40, "找零："), (420, f"{paid - due:.2f}"))
    page.row((120, "谢谢惠顾 欢迎再次光临"))
    page.labels = {
        "company": shop,
        "address": address,
        "date": date,
        "time": seconds,
        "receipt_number": number,
        "total": f"{due:.2f}",
        "payment_method": payment,
    }
    return page


def taxi_receipt(rng: random.Random) -> Page:
    province, city, _, _, plate_prefix = rng.choice(PLACES)
    code, number = f"1{rng.randint(10**10, 10**11 - 1)}", f"{rng.randint(10**7, 10**8 - 1)}"
    plate = f"{plate_prefix}·{rng.choice('TDFBQ')}{rng.randint(1000, 9999)}"
    date, pickup = date_text(rng)
    ride = rng.randint(8, 45)
    hour, minute = divmod(int(pickup[:2]) * 60 + int(pickup[3:]) + ride, 60)
    dropoff = f"{hour % 24:02d}:{minute:02d}"
    distance = f"{rng.uniform(2, 30):.1f}"
    total = f"{rng.randint(12, 95)}.{rng.choice(['00', '50', '80'])}"
    page = Page(width=520, size=24)
    page.row((40, rng.choice([f"{province}{city}市出租汽车专用发票", f"{city}市出租汽车统一发票"])), bold=True)
    page.row((40, "发票联"))
    sep = rng.choice(["  ", "：", ":"])
    if rng.random() < 0.5:
        page.row((40, f"发票代码{sep}{code}"))
        page.row((40, f"发票号码{sep}{number}"))
    else:
        page.row((40, f"代码{code}"), (300, f"号码{number}"))
    page.row((40, f"监督电话{sep}{rng.choice(['12345', '96511', '12328'])}"))
    page.row((40, f"车号{sep}{plate}"))
    page.row((40, f"证号{sep}{rng.randint(10**5, 10**6 - 1)}"))
    page.row((40, f"日期{sep}{date}"))
    if rng.random() < 0.5:
        page.row((40, f"上车{sep}{pickup}"), (280, f"下车{sep}{dropoff}"))
    else:
        page.row((40, f"上车{sep}{pickup}"))
        page.row((40, f"下车{sep}{dropoff}"))
    page.row((40, f"单价{sep}{rng.choice(['2.30', '2.50', '2.80'])}元"))
    page.row((40, f"里程{sep}{distance}{rng.choice(['km', '公里'])}"))
    page.row((40, f"等候{sep}00:0{rng.randint(0, 9)}:{rng.randint(10, 59)}"))
    page.row((40, f"金额{sep}{rng.choice(['', '¥'])}{total}{rng.choice(['元', ''])}"))
    page.labels = {
        "invoice_code": code,
        "invoice_number": number,
        "plate_number": plate,
        "date": date,
        "pickup_time": pickup,
        "dropoff_time": dropoff,
        "distance": distance,
        "total": total,
    }
    return page


def quota_invoice(rng: random.Random) -> Page:
    province, city, district, _, _ = rng.choice(PLACES)
    amount = rng.choice([5, 10, 20, 50, 100])
    words = money_in_words(amount, yuan="元").removesuffix("整")
    code, number = f"1{rng.randint(10**10, 10**11 - 1)}", f"{rng.randint(10**7, 10**8 - 1)}"
    issuer = f"{city}市{district}{rng.choice(['天河停车场管理有限公司', '老街餐饮店', '顺达路桥收费站', '青禾文具店'])}"
    page = Page(width=720, size=26)
    page.row((220, "通用定额发票"), bold=True)
    page.row((290, "发票联"))
    page.row((40, f"国家税务总局{province}税务局监制"))
    page.row((40, f"发票代码 {code}"), (400, f"发票号码 {number}"))
    page.row((260, words), bold=True)
    page.row((280, f"¥{amount}.00"))
    page.row((40, rng.choice(["开票单位：", "收款单位（盖章）：", "收款单位："]) + issuer))
    page.row((40, "本发票限于" + province + "范围内填开使用"))
    page.labels = {
        "invoice_code": code,
        "invoice_number": number,
        "amount": f"{amount}.00",
        "amount_in_words": words,
        "issuer": issuer,
        "region": province,
    }
    return page


def tax_id(rng: random.Random) -> str:
    """A unified social credit code with the right check character (GB 32100-2015), as real ones
    have: documents' checks (chatocr.checks) must pass on a right extraction. The same ten draws as
    before, so a seed gives the same documents but for that character."""
    letters = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "91" + f"{rng.randint(10**5, 10**6 - 1)}" + "".join(rng.choice(letters) for _ in range(10))
    return body[:17] + uscc_check_character(body[:17])


def vat_einvoice(rng: random.Random) -> Page:
    """Every other one the older 增值税电子普通发票 (code, number, check code; buyer above seller),
    else the fully digital 电子发票（普通发票） (a 20-digit number only; buyer and seller side by side)."""
    return digital_einvoice(rng) if rng.random() < 0.5 else vat_einvoice_classic(rng)


def _service_rows(page: Page, rng: random.Random) -> dict[str, str | None]:
    """One service line, the 合计 row and the 价税合计 row; their labels."""
    name, unit, qty, price, rate = rng.choice(SERVICES)
    amount = round(qty * price, 2)
    tax = round(amount * rate, 2)
    page.row(
        (40, name),
        (560, unit),
        (650, str(qty)),
        (760, f"{price:.2f}"),
        (900, f"{amount:.2f}"),
        (1060, f"{round(rate * 100)}%"),
        (1180, f"{tax:.2f}"),
    )
    page.row((40, "合        计"), (900, f"¥{amount:.2f}"), (1180, f"¥{tax:.2f}"))
    total = round(amount + tax, 2)
    words = money_in_words(total)
    page.row((40, "价税合计（大写）"), (300, f"⊗{words}"), (900, f"（小写）¥{total:.2f}"))
    return {
        "amount": f"{amount:.2f}",
        "tax_amount": f"{tax:.2f}",
        "total_amount": f"{total:.2f}",
        "total_amount_in_words": words,
    }


def digital_einvoice(rng: random.Random) -> Page:
    number = f"{rng.choice([23, 24, 25])}{rng.randint(11, 65)}{rng.randint(10**15, 10**16 - 1)}"
    date = f"{rng.choice([2024, 2025])}年{rng.randint(1, 12):02d}月{rng.randint(1, 28):02d}日"
    buyer, seller = rng.choice(BUYERS), rng.choice(SELLERS)
    buyer_id, seller_id = tax_id(rng), tax_id(rng)
    page = Page(width=1400, size=20)  # the digital form prints smaller: two parties side by side
    page.row((480, "电子发票（普通发票）"), bold=True)
    page.row((960, f"发票号码：{number}"))
    page.row((960, f"开票日期：{date}"))
    page.row((40, "购"), (90, f"名称：{buyer}"), (700, "销"), (750, f"名称：{seller}"))
    page.row(
        (40, "买"),
        (90, f"统一社会信用代码/纳税人识别号：{buyer_id}"),
        (700, "售"),
        (750, f"统一社会信用代码/纳税人识别号：{seller_id}"),
    )
    page.row((40, "方"), (700, "方"))
    page.row(
        (40, "项目名称"),
        (420, "规格型号"),
        (560, "单位"),
        (650, "数量"),
        (760, "单价"),
        (900, "金额"),
        (1030, "税率/征收率"),
        (1180, "税额"),
    )
    sums = _service_rows(page, rng)
    page.row((40, "备注"))
    page.row((40, f"开票人：{rng.choice(['孙悦', '刘洋', '何佳'])}"))
    page.labels = {
        "invoice_type": "电子发票（普通发票）",
        "invoice_code": None,
        "invoice_number": number,
        "issue_date": date,
        "buyer_name": buyer,
        "buyer_tax_id": buyer_id,
        "seller_name": seller,
        "seller_tax_id": seller_id,
        **sums,
        "check_code": None,
    }
    return page


def vat_einvoice_classic(rng: random.Random) -> Page:
    province, *_ = rng.choice(PLACES)
    code, number = f"0{rng.randint(10**10, 10**11 - 1)}", f"{rng.randint(10**7, 10**8 - 1)}"
    check = "".join(str(rng.randint(0, 9)) for _ in range(20))
    check_printed = " ".join(check[i : i + 5] for i in range(0, 20, 5))
    date = date_text(rng)[0]
    y, m, d = (int(part) for part in re.findall(r"\d+", date))
    date = f"{y}年{m:02d}月{d:02d}日"
    buyer, seller = rng.choice(BUYERS), rng.choice(SELLERS)
    buyer_id, seller_id = tax_id(rng), tax_id(rng)
    page = Page(width=1400, size=24)
    page.row((430, f"{province[:-1]}增值税电子普通发票"), bold=True)
    page.row((960, f"发票代码：{code}"))
    page.row((960, f"发票号码：{number}"))
    page.row((960, f"开票日期：{date}"))
    page.row((40, f"机器编号：{rng.randint(10**11, 10**12 - 1)}"), (960, f"校验码：{check_printed}"))
    page.row((40, "购"), (90, f"名        称：{buyer}"), (820, "密"))
    page.row((40, "买"), (90, f"纳税人识别号：{buyer_id}"), (820, "码"))
    page.row((40, "方"), (90, "地 址、电 话："), (820, "区"))
    page.row(
        (40, "货物或应税劳务、服务名称"),
        (420, "规格型号"),
        (560, "单位"),
        (650, "数量"),
        (760, "单价"),
        (900, "金额"),
        (1060, "税率"),
        (1180, "税额"),
    )
    sums = _service_rows(page, rng)
    page.row((40, "销"), (90, f"名        称：{seller}"), (820, "备"))
    page.row((40, "售"), (90, f"纳税人识别号：{seller_id}"), (820, "注"))
    street = f"{rng.choice(PLACES)[1]}市{rng.choice(['东风路', '建设路', '人民路'])}{rng.randint(1, 300)}号"
    page.row((40, "方"), (90, f"地 址、电 话：{street}"))
    page.row(
        (40, f"收款人：{rng.choice(['李静', '周敏', '陈晨'])}"),
        (400, f"复核：{rng.choice(['王磊', '赵丽'])}"),
        (760, f"开票人：{rng.choice(['孙悦', '刘洋'])}"),
    )
    page.labels = {
        "invoice_type": "增值税电子普通发票",
        "invoice_code": code,
        "invoice_number": number,
        "issue_date": date,
        "buyer_name": buyer,
        "buyer_tax_id": buyer_id,
        "seller_name": seller,
        "seller_tax_id": seller_id,
        **sums,
        "check_code": check,
    }
    return page


def photograph(image: Image.Image, rng: random.Random) -> Image.Image:
    """Paper as a phone sees it: a slight tilt and softness (saved as a JPEG by the caller)."""
    tilted = image.rotate(
        rng.uniform(-1.5, 1.5), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(250, 249, 244)
    )
    return tilted.filter(ImageFilter.GaussianBlur(0.7))


def rough_photograph(image: Image.Image, rng: random.Random) -> Image.Image:
    """A worse photo (`--rough`): a stronger tilt, taken from farther away, uneven light, sensor noise."""
    tilted = image.rotate(
        rng.uniform(-3.5, 3.5), resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(250, 249, 244)
    )
    scale = rng.uniform(0.55, 0.7)
    small = tilted.resize((int(tilted.width * scale), int(tilted.height * scale)), Image.Resampling.BILINEAR)
    gradient = Image.linear_gradient("L").rotate(rng.choice([0, 90, 180, 270])).resize(small.size)
    light = gradient.point(lambda v: 150 + v * 105 // 255).convert("RGB")
    noise = Image.effect_noise(small.size, 40).convert("RGB")
    return Image.blend(ImageChops.multiply(small, light), noise, 0.12).filter(ImageFilter.GaussianBlur(0.5))


SETS: dict[str, Callable[[random.Random], Page]] = {
    "cn_receipt_synth": cn_receipt,
    "taxi_receipt_synth": taxi_receipt,
    "quota_invoice_synth": quota_invoice,
    "vat_einvoice_synth": vat_einvoice,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-set", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rough", action="store_true", help="worse photos, the e-invoices printed and photographed too"
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for name, make in SETS.items():
        (args.out / name / "images").mkdir(parents=True, exist_ok=True)
        (args.out / name / "labels").mkdir(parents=True, exist_ok=True)
        for i in range(args.per_set):
            page, doc_id = make(rng), f"{name.split('_synth')[0]}_{i:02d}"
            image = page.render()
            if args.rough:
                rough_photograph(image, rng).save(args.out / name / "images" / f"{doc_id}.jpg", quality=60)
            elif name == "vat_einvoice_synth":
                image.save(args.out / name / "images" / f"{doc_id}.pdf", resolution=150)
            else:
                photograph(image, rng).save(args.out / name / "images" / f"{doc_id}.jpg", quality=80)
            labels = json.dumps(page.labels, ensure_ascii=False, indent=1)
            (args.out / name / "labels" / f"{doc_id}.json").write_text(labels + "\n", encoding="utf-8")
        print(f"{args.out / name}: {args.per_set} documents")


if __name__ == "__main__":
    main()
