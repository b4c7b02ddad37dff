"""Generate the packaged Chinese demo datasets reproducibly: fraud messages (`demo:fraud-zh`) and contract clauses with
their one-sentence summaries (`demo:legal-zh`).

Usage: python scripts/make_chinese_data.py [--out mlops/data/demo] [--seed 31]

fraud-zh: short payment and account messages labelled 诈骗 (fraud) or 正常 (legitimate). Fraud messages use the trade's
jargon (套现, 洗钱, 跑分, 四件套, 安全账户), and legitimate ones reuse it in warnings and news, so keywords alone do not
separate the classes. Validation and test draw jargon variants, paraphrases and filter evasion (characters split by
spaces or symbols, pinyin initials) that training never shows; a few labels are flipped, as annotators do.

legal-zh: one clause of a lease, sale, loan, service, employment or confidentiality contract (`document`), its summary
(`summary`) and the key terms the summary must keep (`key_terms`, a JSON list: parties, amounts, deadlines,
penalties), each verbatim in both. Clauses name the parties once and then say 甲方/出租方..., so a summary maps roles back
to names; the first sentence is a preamble, not the summary. Validation and test use party names and wordings training
never shows.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections.abc import Callable
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mlops" / "data" / "demo"
FRAUD, LEGIT = "诈骗", "正常"
FRAUD_SIZES = {"train": 700, "validation": 150, "test": 150}
LEGAL_SIZES = {"train": 300, "validation": 60, "test": 60}

# --- fraud-zh ---------------------------------------------------------------------------------------------------

PEOPLE = ["小王", "小李", "张姐", "刘哥", "陈总", "阿强", "小美", "老赵", "周经理", "孙阿姨", "马师傅", "小杨"]
SHOPS = ["美团", "京东", "淘宝", "滴滴", "星巴克", "盒马", "拼多多", "肯德基", "携程", "苏宁"]
APPS = ["微信", "QQ", "Telegram", "钉钉", "这个号码"]
# (seen in training, held out for validation/test)
JARGON = {
    "套现": (["套现", "信用卡套现", "T现"], ["刷卡提额变现", "花呗提现", "额度变现"]),
    "洗钱": (["洗钱", "洗白资金", "走账"], ["过水", "资金清洗", "帮忙过账"]),
    "跑分": (["跑分", "跑分平台", "代收款"], ["码商", "收款码出租", "兼职收款"]),
    "四件套": (["四件套", "银行卡四件套", "卡农"], ["整套卡资料", "U盾加手机卡", "全套开户资料"]),
    "刷单": (["刷单", "刷单返利", "做单"], ["做任务返佣", "点赞返现", "垫付任务"]),
    "验证码": (["验证码", "短信验证码", "动态码"], ["六位数字", "校验码", "登录码"]),
    "安全账户": (["安全账户", "监管账户", "核查账户"], ["资金清查专户", "公安备案账户", "保全账户"]),
}
PARAPHRASE = {"转账": "汇款", "马上": "立刻", "银行卡": "储蓄卡", "账户": "户头", "客服": "专员", "今天": "今日", "联系": "私聊"}
PINYIN = {"微信": "VX", "银行卡": "yhk", "支付宝": "zfb", "转账": "zz", "验证码": "yzm"}


def money(rng: random.Random) -> str:
    return rng.choice([f"{rng.randint(50, 999)}元", f"{rng.randint(1, 9)}{rng.choice(['千', '万'])}元", f"{rng.randint(1000, 50000)}元"])


def jargon(rng: random.Random, key: str, shifted: bool) -> str:
    seen, unseen = JARGON[key]
    return rng.choice(unseen if shifted and rng.random() < 0.7 else seen)


def fraud_message(rng: random.Random, shifted: bool) -> str:
    a, app, who = money(rng), rng.choice(APPS), rng.choice(PEOPLE)

    def j(key: str) -> str:
        return jargon(rng, key, shifted)

    templates: list[Callable[[], str]] = [
        lambda: f"专业{j('套现')}，额度{a}起，手续费低，加{app}详聊",
        lambda: f"高价收购{j('四件套')}，一套{a}，当天结算，不问用途",
        lambda: f"您的账户涉嫌{j('洗钱')}，请立即将资金转入{j('安全账户')}配合调查",
        lambda: f"我是银行客服，请把刚收到的{j('验证码')}告诉我，帮您取消这笔{a}扣款",
        lambda: f"招{j('跑分')}兼职，日入{a}，只需提供银行卡，{app}联系",
        lambda: f"{j('刷单')}任务，先垫付{a}，完成后返还本金加佣金",
        lambda: f"帮忙用你的卡接收{a}再转出去，给你一成好处，我们负责{j('洗钱')}",
        lambda: f"{who}，我手机坏了，在外地急用钱，先转{a}到这个新账户",
        lambda: f"贷款无需征信，放款前先交{a}保证金，{app}办理",
        lambda: f"您的快递丢失，理赔{a}，请点击链接填写银行卡号和{j('验证码')}",
        lambda: f"公司财务通知：对公账户已变更，请将{a}货款付到下面的新账户",
        lambda: f"有偿{j('跑分')}，流水越大佣金越高，{app}私聊",
    ]
    return rng.choice(templates)()


def legit_message(rng: random.Random, shifted: bool) -> str:
    a, shop, who = money(rng), rng.choice(SHOPS), rng.choice(PEOPLE)

    def j(key: str) -> str:
        return jargon(rng, key, shifted)

    templates: list[Callable[[], str]] = [
        lambda: f"您尾号{rng.randint(1000, 9999)}的银行卡于今天在{shop}消费{a}",
        lambda: f"您向{who}转账{a}已成功到账",
        lambda: f"反诈提醒：银行不会索要{j('验证码')}，更没有所谓{j('安全账户')}",
        lambda: f"警方提示：出租出借{j('四件套')}参与{j('洗钱')}将被追究刑事责任",
        lambda: f"{who}还你的{a}饭钱收到了，谢谢",
        lambda: f"本月账单已出，应还金额{a}，请于{rng.randint(1, 28)}日前还款",
        lambda: f"新闻：警方打掉一个{j('跑分')}团伙，涉案资金{a}",
        lambda: f"您在{shop}的退款{a}已原路退回",
        lambda: f"工资{a}已入账，请注意查收",
        lambda: f"有人让我帮忙{j('刷单')}，我拒绝了并报了警",
        lambda: f"信用卡不能{j('套现')}，违规使用将被降额，请合理消费",
        lambda: f"{who}，房租{a}我周五转给你",
    ]
    return rng.choice(templates)()


def evade(rng: random.Random, text: str, p: float) -> str:
    """Filter evasion: a keyword split by a space or symbol, or written as pinyin initials."""
    for word, code in PINYIN.items():
        if word in text and rng.random() < p:
            text = text.replace(word, code)
    chars = list(text)
    for i in range(len(chars) - 1, 0, -1):
        if "\u4e00" <= chars[i] <= "\u9fff" and "\u4e00" <= chars[i - 1] <= "\u9fff" and rng.random() < p / 6:
            chars.insert(i, rng.choice([" ", "*", "-", "."]))
    return "".join(chars)


def paraphrase(text: str) -> str:
    for word, other in PARAPHRASE.items():
        text = text.replace(word, other)
    return text


def fraud_rows(size: int, rng: random.Random, shifted: bool) -> list[list[str]]:
    rows = []
    for _ in range(size):
        is_fraud = rng.random() < 0.4
        text = fraud_message(rng, shifted) if is_fraud else legit_message(rng, shifted)
        if shifted and rng.random() < 0.5:
            text = paraphrase(text)
        text = evade(rng, text, 0.35 if shifted else 0.2)
        if rng.random() < 0.06:
            is_fraud = not is_fraud
        rows.append([text, FRAUD if is_fraud else LEGIT])
    return rows


# --- legal-zh ---------------------------------------------------------------------------------------------------

COMPANY_WORDS = (
    ["星海", "北辰", "华瑞", "远航", "宏泰", "金桥", "青松", "博雅", "恒信", "云帆", "东方", "嘉禾"],
    ["澜川", "启明", "瀚宇", "锦程", "朗峰"],
)
TRADES = (["科技", "物流", "贸易", "置业", "食品", "能源"], ["医药", "传媒", "建材"])
PEOPLE_NAMES = (["张伟", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周杰", "吴婷"], ["郑凯", "冯雪", "蒋涛", "韩梅"])
RATES = (["万分之五", "千分之一", "万分之三", "0.05%"], ["千分之二", "0.1%"])
PREAMBLES = (
    [
        "本条款为{n1}（以下简称“{r1}”）与{n2}（以下简称“{r2}”）签订的《{contract}》的组成部分。",
        "{n1}（“{r1}”）与{n2}（“{r2}”）就《{contract}》约定如下：",
    ],
    ["依据{n1}作为{r1}、{n2}作为{r2}所签署的《{contract}》，双方同意："],
)
BOILERPLATE = (
    ["本条款在合同终止后继续有效。", "本条所称通知均应以书面形式送达。", "未尽事宜由双方另行协商确定。"],
    ["任何一方未行使本条权利不视为放弃该权利。", "本条部分无效不影响其余部分的效力。"],
)


class Pick:
    """Random values for one clause; `shifted` rows sometimes take held-out names and wordings."""

    def __init__(self, rng: random.Random, shifted: bool) -> None:
        self.rng, self.shifted = rng, shifted

    def of(self, pools: tuple[list[str], list[str]]) -> str:
        seen, unseen = pools
        return self.rng.choice(unseen if self.shifted and self.rng.random() < 0.5 else seen)

    def party(self, person_share: float) -> str:
        if self.rng.random() < person_share:
            return self.of(PEOPLE_NAMES)
        return f"{self.of(COMPANY_WORDS)}{self.of(TRADES)}有限公司"

    def amount(self) -> str:
        return self.rng.choice(
            [f"{self.rng.randint(2, 99)}万元", f"人民币{self.rng.randint(1, 90) * 1000}元", f"{self.rng.randint(3, 60) * 100}元"]
        )

    def date(self) -> str:
        return f"{self.rng.randint(2026, 2028)}年{self.rng.randint(1, 12)}月{self.rng.randint(1, 28)}日"

    def days(self) -> str:
        return f"{self.rng.choice([5, 7, 10, 15, 20, 30, 45, 60, 90])}日"


# Each kind: the contracts it occurs in as (contract, role of party 1, role of party 2, whether party 2 may be a
# person), its clause wordings (seen, held out) and summaries, and the terms it fills in.
Clause = tuple[tuple[str, ...], tuple[str, ...], str]  # (seen wordings, held-out wordings, summary)
KINDS: dict[str, tuple[list[tuple[str, str, str, float]], Clause, Callable[[Pick], dict[str, str]], tuple[str, ...]]] = {
    "payment": (
        [("服务合同", "服务方", "委托方", 0.2), ("货物买卖合同", "卖方", "买方", 0.1), ("房屋租赁合同", "出租方", "承租方", 0.6)],
        (
            (
                "{r2}应于收到{r1}发票之日起{days}内向{r1}支付{fee}{amount}。{r2}逾期付款的，每逾期一日应按未付金额的{rate}向{r1}支付违约金。",
                "{r2}须在{days}内将{fee}{amount}支付至{r1}指定账户；逾期的，每日按未付金额{rate}承担违约金。",
            ),
            ("{fee}{amount}由{r2}于{days}内付清，收款人为{r1}；迟延付款的，{r2}每日另付未付金额{rate}的违约金。",),
            "{n2}须在{days}内向{n1}支付{fee}{amount}，逾期每日加付{rate}违约金。",
        ),
        lambda p: {"days": p.days(), "amount": p.amount(), "rate": p.of(RATES), "fee": p.rng.choice(["服务费", "货款", "租金"])},
        ("n1", "n2", "days", "amount", "rate"),
    ),
    "delivery": (
        [("货物买卖合同", "卖方", "买方", 0.1), ("设备采购合同", "供方", "需方", 0.0)],
        (
            (
                "{r1}应于{date}前将{goods}交付至{r2}指定地点。每迟延交付一日，{r1}应按合同总价的{rate}向{r2}支付违约金。",
                "{r1}须在{date}之前完成{goods}的交付；迟延交付的，{r1}每日按合同总价{rate}向{r2}承担违约责任。",
            ),
            ("{goods}的交付期限为{date}，由{r1}送至{r2}处；逾期交付的，每日按合同总价{rate}计付违约金。",),
            "{n1}须于{date}前向{n2}交付{goods}，迟延每日按合同总价{rate}支付违约金。",
        ),
        lambda p: {"date": p.date(), "rate": p.of(RATES), "goods": p.rng.choice(["全部货物", "订购设备", "备品备件", "样机"])},
        ("n1", "n2", "date", "rate"),
    ),
    "deposit": (
        [("房屋租赁合同", "出租方", "承租方", 0.6), ("设备租赁合同", "出租人", "承租人", 0.3)],
        (
            (
                "租赁期满或合同解除后，{r1}应在{days}内将押金{amount}无息退还{r2}，但可扣除{r2}欠付的费用。",
                "合同终止之日起{days}内，{r1}须向{r2}返还押金{amount}，{r2}尚欠的费用可予抵扣。",
            ),
            ("押金{amount}于租期结束后{days}内由{r1}退回{r2}，其中可扣减{r2}未结清的款项。",),
            "{n1}须在{days}内向{n2}退还押金{amount}，可扣除欠费。",
        ),
        lambda p: {"days": p.days(), "amount": p.amount()},
        ("n1", "n2", "days", "amount"),
    ),
    "confidentiality": (
        [("保密协议", "披露方", "接收方", 0.3), ("劳动合同", "用人单位", "劳动者", 1.0)],
        (
            (
                "{r2}对履行合同中知悉的{r1}商业秘密负有保密义务，保密期限为合同终止后{years}；违反本条的，{r2}应向{r1}支付违约金{amount}。",
                "合同终止后{years}内，{r2}不得披露{r1}的商业秘密，否则须向{r1}支付违约金{amount}。",
            ),
            ("{r1}的商业秘密由{r2}保守，期限延续至合同终止后{years}；{r2}泄密的，赔付违约金{amount}。",),
            "{n2}须在合同终止后{years}内为{n1}保密，违约须支付违约金{amount}。",
        ),
        lambda p: {"years": f"{p.rng.choice([1, 2, 3, 5])}年", "amount": p.amount()},
        ("n1", "n2", "years", "amount"),
    ),
    "loan": (
        [("借款合同", "出借人", "借款人", 0.5)],
        (
            (
                "{r2}应于{date}前向{r1}一次性归还借款本金{amount}及利息，年利率为{interest}；逾期还款的，逾期部分按年利率{penalty}计收罚息。",
                "借款本金{amount}连同按年利率{interest}计算的利息，{r2}须于{date}前全部偿还{r1}；逾期部分按年利率{penalty}计罚息。",
            ),
            ("{r1}出借的本金{amount}应由{r2}在{date}前连本带息还清，年利率{interest}，迟延部分的罚息年利率为{penalty}。",),
            "{n2}须于{date}前向{n1}归还本金{amount}及年利率{interest}的利息，逾期按年利率{penalty}计罚息。",
        ),
        lambda p: {
            "date": p.date(),
            "amount": p.amount(),
            "interest": f"{p.rng.choice([3, 4, 5, 6])}%",
            "penalty": f"{p.rng.choice([8, 9, 12])}%",
        },
        ("n1", "n2", "date", "amount", "interest", "penalty"),
    ),
}


def legal_row(rng: random.Random, shifted: bool) -> list[str]:
    p = Pick(rng, shifted)
    contracts, (seen, unseen, summary), terms, keys = KINDS[rng.choice(sorted(KINDS))]
    contract, r1, r2, person_share = rng.choice(contracts)
    fill = {"contract": contract, "r1": r1, "r2": r2, "n1": p.party(0.2), "n2": p.party(person_share), **terms(p)}
    while fill["n2"] == fill["n1"]:
        fill["n2"] = p.party(person_share)
    body = rng.choice(unseen if shifted and rng.random() < 0.5 else seen)
    sentences = [p.of(PREAMBLES).format(**fill), body.format(**fill)]
    if rng.random() < 0.6:
        sentences.append(p.of(BOILERPLATE))
    document = "".join(sentences)
    key_terms = [fill[k] for k in keys]
    return [document, summary.format(**fill), json.dumps(key_terms, ensure_ascii=False)]


def legal_rows(size: int, rng: random.Random, shifted: bool, seen: set[str]) -> list[list[str]]:
    rows: list[list[str]] = []
    while len(rows) < size:
        row = legal_row(rng, shifted)
        if row[0] not in seen:  # no clause in two splits, nor twice in one
            seen.add(row[0])
            rows.append(row)
    return rows


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder that gets fraud-zh/ and legal-zh/")
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    for offset, (split, size) in enumerate(FRAUD_SIZES.items()):
        rows = fraud_rows(size, random.Random(args.seed + offset), shifted=split != "train")
        write(args.out / "fraud-zh" / f"{split}.csv", ["text", "label"], rows)
    seen: set[str] = set()
    for offset, (split, size) in enumerate(LEGAL_SIZES.items()):
        rows = legal_rows(size, random.Random(args.seed + 100 + offset), split != "train", seen)
        write(args.out / "legal-zh" / f"{split}.csv", ["document", "summary", "key_terms"], rows)


if __name__ == "__main__":
    main()
