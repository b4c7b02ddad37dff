"""Generate the packaged fraud-text demo dataset reproducibly.

Usage: python scripts/make_demo_data.py [--out-dir mlops/data/demo/fraud] [--n 2000] [--seed 13]

The texts are short payment/transfer/account messages. Fraud messages use
obfuscated industry slang ("c@sh 0ut", "fullz", "l0an fl1p") and legitimate
messages deliberately reuse the same vocabulary (warnings that mention PINs,
codes and cash-outs), so bag-of-words models cannot separate the classes by
keywords alone. Validation and test use slang variants, paraphrases and
keyword-filter evasion (leetspeak, dropped or swapped letters) that the training
split shows rarely or never. A few percent of the labels are flipped to mimic annotation noise.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

NAMES = ["Anna", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jia", "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya"]
SHOPS = ["Tesco", "Shell", "Amazon", "Uber", "Lidl", "IKEA", "Starbucks", "Walmart", "Zara", "Boots"]
CHANNELS = ["WhatsApp", "Telegram", "Signal", "text", "DM", "this number"]

# Slang variants seen in training, and new variants that only appear in validation/test:
# the failing baseline in the reference case came from jargon it had never seen.
SLANG = {
    "cash out": (["cash out", "c@sh out", "ca$h 0ut", "cashout"], ["withdraw it all", "ka$h out", "c4sh-out", "empty the card"]),
    "fullz": (["fullz", "fulls", "fu11z"], ["full info packs", "complete identity kits", "ful1z"]),
    "dumps": (["dumps", "dumpz", "d*mps"], ["track2 dumps", "cloned card data", "dmps"]),
    "loan flip": (["loan flip", "l0an fl1p", "loan fl!p"], ["money doubling", "investment flip", "fl1p your cash"]),
    "clean the funds": (["clean the funds", "wash the money", "cl3an the fundz"], ["w@sh the cash", "launder it", "make the money legit"]),
    "gift cards": (["gift cards", "g1ft cards", "giftcardz"], ["gift c@rds", "steam vouchers", "itunes cards"]),
    "drop account": (["drop account", "dr0p acct", "drop acc"], ["mule account", "spare bank account", "money mule"]),
    "verify": (["verify", "ver1fy", "v3rify"], ["confirm", "re-validate", "authenticate"]),
}

# Word-level paraphrases applied to half of the validation/test texts.
PARAPHRASE = {
    "send": "forward",
    "transfer": "wire",
    "account": "bank account",
    "money": "funds",
    "today": "right now",
    "pay": "settle",
    "card": "debit card",
    "code": "passcode",
    "share": "give out",
    "receive": "accept",
    "completed": "done",
    "reminder": "heads-up",
    "thanks": "cheers",
    "police": "authorities",
    "bank": "lender",
    "urgent": "time-sensitive",
    "payment": "instalment",
    "msg": "contact",
    "details": "info",
    "new": "different",
}

LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "$", "t": "7"}


def slang(rng: random.Random, shifted: bool, key: str) -> str:
    seen, unseen = SLANG[key]
    return rng.choice(unseen if shifted and rng.random() < 0.7 else seen)


def obfuscate(rng: random.Random, text: str, p: float) -> str:
    """Keyword-filter evasion: leetspeak, dropped letters and swapped letters in some words."""
    words = []
    for w in text.split():
        if len(w) > 3 and rng.random() < p:
            i = rng.randrange(1, len(w) - 1)
            kind = rng.random()
            if kind < 0.4:
                w = "".join(LEET.get(c, c) if rng.random() < 0.6 else c for c in w)
            elif kind < 0.7:
                w = w[:i] + w[i + 1 :]
            else:
                w = w[: i - 1] + w[i] + w[i - 1] + w[i + 1 :]
        words.append(w)
    return " ".join(words)


def paraphrase(rng: random.Random, text: str) -> str:
    return " ".join(PARAPHRASE.get(w.lower(), w) if rng.random() < 0.8 else w for w in text.split())


def amount(rng: random.Random) -> str:
    return f"${rng.choice([rng.randint(5, 99), rng.randint(100, 999), rng.randint(1000, 9000)])}" + rng.choice(
        ["", ".00", f".{rng.randint(10, 99)}"]
    )


def fraud_text(rng: random.Random, shifted: bool) -> str:
    n, a, ch = rng.choice(NAMES), amount(rng), rng.choice(CHANNELS)
    templates = [
        lambda: f"Need someone to {slang(rng, shifted, 'cash out')} {a} tonight, 40% cut, msg me on {ch}",
        lambda: f"Selling fresh {slang(rng, shifted, 'fullz')} with bank login, payment in crypto only",
        lambda: f"Your account is on hold, {slang(rng, shifted, 'verify')} your PIN at this link within 24h or lose {a}",
        lambda: f"Hi it's {n} from the bank, read me the code we just sent so I can stop the transfer",
        lambda: f"Got {slang(rng, shifted, 'dumps')} with pin, {slang(rng, shifted, 'cash out')} at any ATM, dm on {ch}",
        lambda: f"Quick {slang(rng, shifted, 'loan flip')}: send {a} today, get double back by Friday guaranteed",
        lambda: f"Can you receive {a} into your account and forward it? keep 10%, we {slang(rng, shifted, 'clean the funds')}",
        lambda: f"To release your refund of {a} please buy {slang(rng, shifted, 'gift cards')} and text me the numbers",
        lambda: f"Looking for a {slang(rng, shifted, 'drop account')} for a {a} transfer, paying well, no questions",
        lambda: f"Security team here: {slang(rng, shifted, 'verify')} card number, expiry and CVV by reply to keep the card active",
        lambda: f"{n}, I'm stuck abroad, phone broke, please wire {a} to this new account today",
        lambda: f"Move the {a} through three accounts first so it does not get flagged, then {slang(rng, shifted, 'cash out')}",
        lambda: f"Invoice update: our bank details changed, pay the {a} to the new account below",
        lambda: f"Earn {a} a week just letting us use your account for transfers, {ch} for details",
        lambda: f"Unlock your frozen wallet: share the one-time code and your PIN with our agent on {ch}",
    ]
    return rng.choice(templates)()


# Paraphrases of the training templates with little word overlap: a bag of words cannot
# match them, a pretrained encoder that knows what the words mean can.
def fraud_text_unseen(rng: random.Random) -> str:
    _name, a = rng.choice(NAMES), amount(rng)  # the unused draw keeps the committed files' random stream
    templates = [
        lambda: "Looking for a partner to withdraw funds off stolen plastic tonight, you keep a big share",
        lambda: "Offering complete identity records including online banking passwords, pay in bitcoin",
        lambda: "Access to your profile is suspended; confirm your secret number via the page below immediately",
        lambda: "Please pass me the six digits the bank just texted you, I'll sort out your issue",
        lambda: f"Let funds land in your name and pass them on, a share of {a} is yours",
        lambda: "Your reimbursement is waiting; purchase store vouchers and message me the codes on the back",
        lambda: f"Mum it's me, new phone, can you pay {a} for me right away, will explain later",
        lambda: f"Our supplier account moved, kindly route the {a} to the updated beneficiary",
    ]
    return rng.choice(templates)()


def legit_text_unseen(rng: random.Random) -> str:
    n, a, s = rng.choice(NAMES), amount(rng), rng.choice(SHOPS)
    templates = [
        lambda: f"The {a} you sent {n} has gone through",
        lambda: f"Your purchase at {s} for {a} has been posted",
        lambda: "Scam warning: staff never request passcodes or secret numbers by phone",
        lambda: f"Salary of {a} credited; your available balance has been updated",
        lambda: f"Standing order to {s} for {a} will run on Monday",
        lambda: f"The cashback of {a} from {s} is now in your wallet",
        lambda: f"Thanks {n}, got the {a} you paid back for the concert tickets",
        lambda: "A stranger wanted to use my bank account to move cash; I refused and reported it",
    ]
    return rng.choice(templates)()


def legit_text(rng: random.Random, shifted: bool) -> str:
    n, a, s = rng.choice(NAMES), amount(rng), rng.choice(SHOPS)
    templates = [
        lambda: f"Your transfer of {a} to {n} was completed",
        lambda: f"Card ending {rng.randint(1000, 9999)} was used for {a} at {s}",
        lambda: f"Reminder: your payment of {a} is due on the {rng.randint(1, 28)}th",
        lambda: "We will never ask for your PIN or one-time code; report anyone who does",
        lambda: f"Beware of people offering to {slang(rng, shifted, 'cash out')} cards; we reported the account to the police",
        lambda: f"Your monthly statement is ready, balance {a}",
        lambda: f"{n} sent you {a} for dinner, thanks!",
        lambda: f"Fraud alert training: never buy {slang(rng, shifted, 'gift cards')} to pay a bank or a refund",
        lambda: f"Your refund of {a} from {s} has been credited to your account",
        lambda: f"The code to {slang(rng, shifted, 'verify')} your new device is {rng.randint(100000, 999999)}; do not share it",
        lambda: f"Hi {n}, splitting the rent: I'll transfer {a} to your account on Friday",
        lambda: f"Article: how criminals use {slang(rng, shifted, 'drop account')}s and {slang(rng, shifted, 'fullz')} to launder money",
        lambda: f"Direct debit of {a} to {s} set up successfully",
        lambda: f"Loan payment of {a} received, thank you; no action needed",
        lambda: "Your card was frozen at your request; unfreeze it anytime in the app",
        lambda: f"Payroll deposit of {a} has arrived in your account",
        lambda: "Someone asked me to receive money and forward it, I said no and called the bank",
    ]
    return rng.choice(templates)()


def generate(n: int, seed: int, noise: float, shifted: bool) -> list[tuple[str, str]]:
    """`shifted` rows use held-out slang and paraphrased wording, as production traffic would."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        is_fraud = rng.random() < 0.4
        if shifted and rng.random() < 0.35:
            text = fraud_text_unseen(rng) if is_fraud else legit_text_unseen(rng)
        else:
            text = fraud_text(rng, shifted) if is_fraud else legit_text(rng, shifted)
        if shifted and rng.random() < 0.5:
            text = paraphrase(rng, text)
        text = obfuscate(rng, text, 0.35 if shifted else 0.25)
        if rng.random() < 0.3:
            text = text.lower()
        if rng.random() < noise:
            is_fraud = not is_fraud
        rows.append((text, "fraud" if is_fraud else "legitimate"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default="mlops/data/demo/fraud")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--noise", type=float, default=0.04)
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {"train": int(args.n * 0.7), "validation": int(args.n * 0.1), "test": args.n - int(args.n * 0.7) - int(args.n * 0.1)}
    for offset, (split, size) in enumerate(sizes.items()):
        rows = generate(size, args.seed + offset, args.noise, shifted=split != "train")
        path = out_dir / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
