"""Generate the packaged legal-clause summarisation demo dataset reproducibly.

Usage: python scripts/make_legal_data.py [--out mlops/data/demo/legal] [--seed 29]

Each row is one clause from a lease, service, supply, loan, employment, licence, consulting,
rental or non-disclosure agreement (`document`), a one-sentence reference summary (`summary`)
and, as a JSON list, the key terms the summary must keep (`key_terms`): party names, amounts,
deadlines and penalties. Every key term appears verbatim in both the clause and the summary.
Clauses name the parties once and then use role labels ("the Tenant"), so a summary has to
map roles back to names. Validation and test draw some party names, preambles, clause
wordings, boilerplate sentences and number formats that the training split never shows,
and no clause text occurs in more than one split.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SIZES = {"train": 400, "validation": 80, "test": 80}
MAX_DOCUMENT_WORDS = 160
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "mlops" / "data" / "demo" / "legal"

# (seen in every split, held out for validation/test)
FIRST_NAMES = (
    [
        *["Maria", "James", "Aisha", "Tomasz", "Elena", "David", "Mei", "Samuel", "Ingrid", "Rahul", "Chloe", "Marcus"],
        *["Fatima", "Lukas", "Grace", "Hiro", "Sofia", "Daniel", "Amara", "Pablo", "Nadia", "Oliver", "Yara", "Victor"],
    ],
    ["Beatrix", "Kwame", "Linnea", "Rafael", "Zainab", "Henrik", "Carmen", "Dmitri", "Noor", "Tobias"],
)
LAST_NAMES = (
    [
        *["Okafor", "Bennett", "Kowalski", "Rossi", "Chen", "Haddad", "Lindqvist", "Patel", "Moreau", "Fischer", "Nakamura"],
        *["O'Brien", "Alvarez", "Mensah", "Novak", "Kaur", "Dubois", "Schmidt", "Ferreira", "Ivanova", "Walsh", "Tanaka"],
    ],
    ["Abernathy", "Castellano", "Eriksen", "Oyelaran", "Vasquez", "Whitcombe", "Zielinski", "Achterberg", "Delacroix", "Mbeki"],
)
COMPANY_WORDS = (
    [
        *["Northgate", "Harbor Lane", "Bluestone", "Redwood", "Silverline", "Ironbridge", "Meridian", "Oakfield", "Crescent"],
        *["Summit", "Kestrel", "Larkspur", "Granite", "Brightwater", "Copperleaf", "Elmstead", "Foxglove", "Highmoor"],
    ],
    ["Quillon", "Saltmarsh", "Thornbury", "Vantage Point", "Wrenfield", "Ashcombe", "Blackfriars", "Ravensworth"],
)
COMPANY_TRADES = (
    ["Logistics", "Properties", "Software", "Capital", "Engineering", "Foods", "Analytics", "Textiles", "Energy", "Health"],
    ["Robotics", "Shipping", "Pharma", "Interiors", "Finance"],
)
COMPANY_SUFFIXES = (["Ltd", "LLC", "Inc", "GmbH", "plc", "LLP"], ["Pty Ltd", "S.A.", "AG", "BV"])
CURRENCIES = (["${:,}", "€{:,}", "£{:,}", "USD {:,}", "EUR {:,}", "${:,}.00"], ["GBP {:,}", "CHF {:,}", "€{:,}.00", "CAD {:,}"])
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]

CONTRACTS = {
    "Lease": ("Landlord", "Tenant"),
    "Service Agreement": ("Provider", "Client"),
    "Loan Agreement": ("Lender", "Borrower"),
    "Supply Agreement": ("Supplier", "Buyer"),
    "Consulting Agreement": ("Consultant", "Client"),
    "Licence Agreement": ("Licensor", "Licensee"),
    "Employment Contract": ("Employer", "Employee"),
    "Non-Disclosure Agreement": ("Disclosing Party", "Receiving Party"),
    "Equipment Rental Agreement": ("Owner", "Hirer"),
}
# Probability that a role is held by a person rather than a company.
PERSON_ROLES = {"Employee": 1.0, "Tenant": 0.6, "Borrower": 0.5, "Consultant": 0.5, "Landlord": 0.3, "Hirer": 0.3}

PREAMBLES = (
    [
        'This clause forms part of the {contract} between {n1} (the "{r1}") and {n2} (the "{r2}").',
        '{n1} (the "{r1}") and {n2} (the "{r2}") agree as follows.',
        "Under the {contract} dated {signed}, made between {n1} as {r1} and {n2} as {r2}:",
        '{contract} between {n1} ("{r1}") and {n2} ("{r2}").',
    ],
    [
        'Parties: {n1} (the "{r1}"); {n2} (the "{r2}").',
        'In this {contract}, "{r1}" means {n1} and "{r2}" means {n2}.',
        "The following provision binds {n1}, acting as {r1}, and {n2}, acting as {r2}.",
    ],
)
BOILERPLATE = (
    [
        "Any notice under this clause must be given in writing to the address stated in the {contract}.",
        "This clause survives the expiry or termination of the {contract}.",
        "No delay in exercising any right under this clause operates as a waiver of it.",
        "Headings are for convenience only and do not affect interpretation.",
        "The rights in this clause are in addition to any other rights available at law.",
        "Each party shall bear its own costs in connection with this clause.",
        "Any amendment to this clause must be agreed in writing and signed by both parties.",
    ],
    [
        "A failure to enforce this provision on one occasion shall not prevent its later enforcement.",
        "Should any part of this clause prove unenforceable, the remainder shall continue in full force.",
        "Communications relating to this clause may be sent by email with confirmation of receipt.",
        "This provision binds the successors and permitted assigns of each party.",
    ],
)


@dataclass(frozen=True)
class Term:
    """One fill-in value: its wording in the clause, in the summary, and the key term both must contain (None: not key)."""

    document: str
    summary: str
    key: str | None = None


@dataclass(frozen=True)
class Clause:
    """A clause wording and the reference summaries that fit it; fields are str.format names."""

    body: str
    summaries: tuple[str, ...]


@dataclass(frozen=True)
class ClauseKind:
    """One kind of clause: the contracts it occurs in, with who is bound and who benefits, and its wordings."""

    headings: tuple[str, ...]
    roles: dict[str, tuple[str, str]]  # contract -> (obliged role, benefiting role)
    seen: tuple[Clause, ...]
    unseen: tuple[Clause, ...]
    terms: Callable[[Draw, str], dict[str, Term]]
    either_side: bool = False  # the clause reads as well with the roles swapped


class Draw:
    """Random values for one row; `shifted` rows sometimes take held-out names and formats."""

    def __init__(self, rng: random.Random, shifted: bool) -> None:
        self.rng = rng
        self.shifted = shifted
        self.currency = self.pick(CURRENCIES, 0.3)

    def pick(self, pools: tuple[list[str], list[str]], held_out_share: float) -> str:
        seen, unseen = pools
        return self.rng.choice(unseen if self.shifted and self.rng.random() < held_out_share else seen)

    def party(self, role: str) -> str:
        if self.rng.random() < PERSON_ROLES.get(role, 0.0):
            return f"{self.pick(FIRST_NAMES, 0.5)} {self.pick(LAST_NAMES, 0.5)}"
        trade = f" {self.pick(COMPANY_TRADES, 0.3)}" if self.rng.random() < 0.5 else ""
        return f"{self.pick(COMPANY_WORDS, 0.5)}{trade} {self.pick(COMPANY_SUFFIXES, 0.3)}"

    def money(self, low: int, high: int, step: int) -> Term:
        text = self.currency.format(self.rng.randrange(low, high + 1, step))
        return Term(text, text, text)

    def percent(self, choices: list[str]) -> Term:
        text = self.rng.choice(choices)
        return Term(text, text, text)

    def span(self, counts: list[int], units: list[str]) -> Term:
        text = f"{self.rng.choice(counts)} {self.rng.choice(units)}"
        return Term(text, text, text)

    def date(self, first_year: int = 2025, last_year: int = 2028) -> str:
        day, month, year = self.rng.randint(1, 28), self.rng.choice(MONTHS), self.rng.randint(first_year, last_year)
        return f"{month} {day}, {year}" if self.shifted and self.rng.random() < 0.3 else f"{day} {month} {year}"

    def within(self, counts: list[int], units: list[str], events: list[str], summary_event: str) -> Term:
        key = f"within {self.rng.choice(counts)} {self.rng.choice(units)}"
        return Term(f"{key} {self.rng.choice(events)}", f"{key} {summary_event}".rstrip(), key)

    def by_date(self) -> Term:
        date = self.date()
        return Term(f"{self.rng.choice(['no later than', 'on or before', 'by'])} {date}", f"by {date}", date)

    def plain(self, choices: list[str], key: bool = False) -> Term:
        text = self.rng.choice(choices)
        return Term(text, text, text if key else None)


FEES = {
    "Lease": "monthly rent",
    "Service Agreement": "service fee",
    "Supply Agreement": "purchase price",
    "Consulting Agreement": "consulting fee",
    "Licence Agreement": "annual licence fee",
    "Equipment Rental Agreement": "hire charge",
}
DELIVERABLES = {
    "Supply Agreement": ["the goods", "the ordered equipment", "the spare parts"],
    "Service Agreement": ["the deliverables", "the software release", "the migrated system"],
    "Consulting Agreement": ["the final report", "the market study", "the audit findings"],
}
DAYS = [7, 10, 14, 15, 21, 28, 30, 45, 60, 90]


def payment_terms(d: Draw, contract: str) -> dict[str, Term]:
    amount = d.money(800, 6000, 50) if contract == "Lease" else d.money(1000, 90000, 250)
    deadline = d.within(DAYS, ["days", "business days"], ["of the date of each invoice", "of receiving an invoice"], "of invoice")
    return {"fee": Term(FEES[contract], FEES[contract]), "amount": amount, "deadline": deadline if d.rng.random() < 0.6 else d.by_date()}


def late_payment_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "deadline": d.within([5, 7, 10, 14, 15, 30], ["days"], ["of its due date", "after the due date"], "of the due date"),
        "penalty": d.percent(["1%", "1.5%", "2%", "2.5%", "3%", "4%", "5%"]),
        "fee": d.money(25, 500, 25),
    }


def termination_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "notice": d.span([14, 28, 30, 60, 90, 120], ["days"]),
        "deadline": d.within([7, 10, 14, 21, 30], ["days"], ["of receiving written notice of it", "after being notified of it"], ""),
        "fee": d.money(500, 50000, 250),
    }


def confidentiality_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "period": d.plain(["2 years", "3 years", "5 years", "18 months", "24 months", "36 months"], key=True),
        "damages": d.money(10000, 250000, 5000),
    }


def deposit_terms(d: Draw, contract: str) -> dict[str, Term]:
    term = "tenancy" if contract == "Lease" else "hire period"
    return {
        "amount": d.money(500, 12000, 100),
        "deadline": d.within(
            [10, 14, 21, 28, 30, 45, 60], ["days"], [f"of the end of the {term}", f"after the {term} ends"], f"of the {term} ending"
        ),
    }


def delivery_terms(d: Draw, contract: str) -> dict[str, Term]:
    deadline = d.by_date() if d.rng.random() < 0.6 else d.within(DAYS, ["days", "business days"], ["of the purchase order"], "of the order")
    return {
        "goods": d.plain(DELIVERABLES[contract]),
        "deadline": deadline,
        "penalty": d.percent(["0.5%", "1%", "1.5%", "2%", "3%"]),
        "cap": d.percent(["10%", "12%", "15%", "20%"]),
    }


def indemnity_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "cap": d.money(50000, 2000000, 25000),
        "deadline": d.within([7, 10, 14, 30], ["days", "business days"], ["of becoming aware of it"], "of becoming aware"),
    }


def renewal_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "period": d.plain(["6 months", "12 months", "24 months", "2 years", "3 years"], key=True),
        "notice": d.span([30, 60, 90, 120, 180], ["days"]),
        "increase": d.percent(["2%", "2.5%", "3%", "4%", "5%", "7%"]),
    }


def non_compete_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "period": d.plain(["6 months", "9 months", "12 months", "18 months", "2 years"], key=True),
        "radius": d.plain(["10 miles", "25 miles", "50 miles", "30 kilometres", "100 kilometres"]),
        "damages": d.money(5000, 150000, 2500),
    }


def loan_terms(d: Draw, contract: str) -> dict[str, Term]:
    principal = d.rng.randrange(5000, 500001, 1000)
    instalment = d.currency.format(round(principal * 1.1 / d.rng.choice([12, 24, 36, 48, 60]) / 10) * 10)
    return {
        "principal": Term(d.currency.format(principal), d.currency.format(principal), d.currency.format(principal)),
        "instalment": Term(instalment, instalment, instalment),
        "rate": d.percent(["3%", "4.5%", "5%", "6.25%", "7%", "8.5%", "10%", "12%"]),
        "deadline": d.by_date(),
    }


def liability_terms(d: Draw, contract: str) -> dict[str, Term]:
    return {
        "cap": d.money(20000, 5000000, 10000),
        "deadline": d.within(
            [6, 12, 18, 24], ["months"], ["of the event giving rise to it", "after the cause of action arose"], "of the event"
        ),
    }


PAYERS = {
    "Lease": ("Tenant", "Landlord"),
    "Service Agreement": ("Client", "Provider"),
    "Supply Agreement": ("Buyer", "Supplier"),
    "Consulting Agreement": ("Client", "Consultant"),
    "Licence Agreement": ("Licensee", "Licensor"),
    "Equipment Rental Agreement": ("Hirer", "Owner"),
}
PROVIDERS = {
    "Service Agreement": ("Provider", "Client"),
    "Supply Agreement": ("Supplier", "Buyer"),
    "Licence Agreement": ("Licensor", "Licensee"),
    "Consulting Agreement": ("Consultant", "Client"),
}
RECIPIENTS = {
    "Non-Disclosure Agreement": ("Receiving Party", "Disclosing Party"),
    "Employment Contract": ("Employee", "Employer"),
    "Service Agreement": ("Provider", "Client"),
    "Consulting Agreement": ("Consultant", "Client"),
}

KINDS = {
    "payment": ClauseKind(
        headings=("Payment", "Fees", "Consideration"),
        roles=PAYERS,
        seen=(
            Clause(
                "The {ob} shall pay the {be} the {fee} of {amount} {deadline}. Payment shall be made by bank transfer to the account "
                "nominated in writing by the {be}, without any set-off or deduction.",
                ("{OB} must pay {BE} the {fee} of {amount} {deadline}.", "{OB} owes {BE} {amount} as the {fee}, payable {deadline}."),
            ),
            Clause(
                "In consideration of the obligations of the {be}, the {ob} agrees to pay {amount} as the {fee}. The full sum falls due "
                "{deadline}, and the {be} shall issue a valid tax invoice before any payment becomes owing.",
                ("{OB} must pay {BE} the {fee} of {amount} {deadline}.", "{OB} owes {BE} {amount} as the {fee}, payable {deadline}."),
            ),
            Clause(
                "Each invoice issued by the {be} for the {fee} of {amount} shall be settled by the {ob} {deadline}. All amounts are "
                "exclusive of value added tax, which the {ob} shall pay in addition at the applicable rate.",
                ("{OB} must pay {BE}'s invoices for the {fee} of {amount} plus VAT {deadline}.",),
            ),
        ),
        unseen=(
            Clause(
                "The sum of {amount}, representing the {fee}, is payable by the {ob} to the {be} {deadline}; the {ob} may not withhold "
                "any part of it on account of a disputed claim.",
                ("{OB} must pay {BE} the full {fee} of {amount} {deadline}, without withholding.",),
            ),
            Clause(
                "Subject to receipt of a correct invoice, the {be} is entitled to receive {amount} from the {ob} {deadline}, such amount "
                "constituting the entire {fee} payable under this {contract}.",
                ("{BE} is entitled to {amount} from {OB} as the {fee}, due {deadline}.",),
            ),
        ),
        terms=payment_terms,
    ),
    "late_payment": ClauseKind(
        headings=("Late Payment", "Interest on Overdue Sums", "Default Interest"),
        roles={**PAYERS, "Loan Agreement": ("Borrower", "Lender")},
        seen=(
            Clause(
                "If the {ob} fails to pay any sum {deadline}, interest shall accrue on the overdue amount at {penalty} per month until "
                "payment in full. The {be} may also recover a fixed late fee of {fee} for each overdue invoice.",
                ("{OB} owes {BE} {penalty} monthly interest and a {fee} fee on sums unpaid {deadline}.",),
            ),
            Clause(
                "Any payment not received by the {be} {deadline} shall be treated as late. The {ob} shall then pay a late charge equal "
                "to {penalty} of the unpaid balance, together with an administration fee of {fee}.",
                ("{OB} owes {BE} a {penalty} late charge and {fee} on payments not made {deadline}.",),
            ),
            Clause(
                "Where the {ob} has not paid an invoice {deadline}, the {ob} shall pay the {be} a penalty of {penalty} of the overdue "
                "sum for each month of delay, and a fixed recovery fee of {fee}.",
                ("{OB} pays {BE} a {penalty} monthly penalty plus {fee} on invoices unpaid {deadline}.",),
            ),
        ),
        unseen=(
            Clause(
                "Sums not settled {deadline} attract default interest of {penalty} per month, compounded monthly, and the {ob} shall "
                "reimburse the {be} a collection charge of {fee} per reminder.",
                ("Sums {OB} owes {BE} unpaid {deadline} incur {penalty} monthly interest plus {fee} per reminder.",),
            ),
            Clause(
                "The {be} may charge the {ob} {fee} for every late payment and {penalty} interest per month on the arrears, where "
                "payment has not been made {deadline}, without prejudice to its other remedies.",
                ("{BE} may charge {OB} {fee} per late payment and {penalty} monthly interest if unpaid {deadline}.",),
            ),
        ),
        terms=late_payment_terms,
    ),
    "termination": ClauseKind(
        headings=("Termination", "Early Termination", "Ending this Agreement"),
        roles=CONTRACTS,
        seen=(
            Clause(
                "The {ob} may terminate this {contract} for convenience by giving the {be} not less than {notice}' written notice. "
                "On termination under this clause the {ob} shall pay the {be} an early termination fee of {fee}.",
                ("{OB} may end the {contract} with {BE} on {notice}' notice, paying a {fee} termination fee.",),
            ),
            Clause(
                "Either party may terminate this {contract} with immediate effect if the other commits a material breach and fails "
                "to remedy that breach {deadline}. The {ob} may additionally terminate on {notice}' notice without cause.",
                ("{OB} may end the {contract} with {BE} on {notice}' notice; either may end it for breaches unremedied {deadline}.",),
            ),
            Clause(
                "This {contract} may be ended by the {ob} at any time on {notice}' prior notice in writing to the {be}, provided that "
                "the {ob} pays, on or before the termination date, a termination payment of {fee}.",
                ("{OB} can terminate the {contract} with {BE} on {notice}' written notice, paying {fee}.",),
            ),
        ),
        unseen=(
            Clause(
                "Should the {be} breach any material term and leave it unremedied {deadline}, the {ob} is entitled to bring this "
                "{contract} to an end forthwith and to recover a break fee of {fee}.",
                ("{OB} may end the {contract} and claim {fee} if {BE} leaves a breach unremedied {deadline}.",),
            ),
            Clause(
                "Without needing to give reasons, the {ob} may end this {contract} by serving {notice}' notice on the {be}. No "
                "compensation is payable other than a fixed exit fee of {fee}.",
                ("{OB} may end the {contract} with {BE} on {notice}' notice, paying only a {fee} exit fee.",),
            ),
        ),
        terms=termination_terms,
        either_side=True,
    ),
    "confidentiality": ClauseKind(
        headings=("Confidentiality", "Confidential Information", "Non-Disclosure"),
        roles=RECIPIENTS,
        seen=(
            Clause(
                "The {ob} shall keep confidential all information disclosed by the {be} and shall not use it for any purpose other "
                "than performing this {contract}. This obligation continues for {period} after the {contract} ends.",
                ("{OB} must keep {BE}'s information confidential for {period} after the {contract} ends.",),
            ),
            Clause(
                "The {ob} shall not disclose any confidential information of the {be} to a third party for a period of {period}. "
                "Any breach entitles the {be} to liquidated damages of {damages}, without prejudice to injunctive relief.",
                ("{OB} may not disclose {BE}'s confidential information for {period}; breach costs {damages}.",),
            ),
            Clause(
                "Confidential information received by the {ob} from the {be} may be disclosed only to employees who need to know it and "
                "who are bound by equivalent duties. These restrictions apply for {period} and a breach attracts a penalty of {damages}.",
                ("{OB} must protect {BE}'s confidential information for {period}, with a {damages} breach penalty.",),
            ),
        ),
        unseen=(
            Clause(
                "For {period} from the date of disclosure, the {ob} undertakes to hold in strict confidence every document, formula "
                "and business plan supplied by the {be}, returning or destroying them on request.",
                ("{OB} must keep {BE}'s documents strictly confidential for {period} and return them on request.",),
            ),
            Clause(
                "Any unauthorised use or publication by the {ob} of trade secrets belonging to the {be} during the next {period} "
                "obliges the {ob} to pay agreed damages of {damages} per incident.",
                ("{OB} owes {BE} {damages} per misuse of its trade secrets during the next {period}.",),
            ),
        ),
        terms=confidentiality_terms,
    ),
    "security_deposit": ClauseKind(
        headings=("Security Deposit", "Deposit", "Bond"),
        roles={"Lease": ("Tenant", "Landlord"), "Equipment Rental Agreement": ("Hirer", "Owner")},
        seen=(
            Clause(
                "On signing this {contract} the {ob} shall pay the {be} a security deposit of {amount}. The {be} shall return the "
                "deposit, less any reasonable cost of repairing damage beyond fair wear and tear, {deadline}.",
                ("{OB} pays {BE} a {amount} deposit, refundable less damage costs {deadline}.",),
            ),
            Clause(
                "The {be} shall hold a deposit of {amount} paid by the {ob} as security for the performance of its obligations. Any "
                "balance of the deposit shall be refunded to the {ob} {deadline}.",
                ("{BE} holds {OB}'s {amount} deposit and must refund any balance {deadline}.",),
            ),
            Clause(
                "A refundable deposit of {amount} is payable by the {ob} before the start date. The {be} may deduct unpaid charges "
                "and must repay the remainder {deadline}, with a written statement of deductions.",
                ("{OB} pays a refundable {amount} deposit; {BE} must repay the remainder {deadline}.",),
            ),
        ),
        unseen=(
            Clause(
                "As security, the {ob} has lodged {amount} with the {be}. That sum will be released to the {ob} {deadline}, unless "
                "the {be} has notified a claim for arrears or damage in the meantime.",
                ("{BE} must release {OB}'s {amount} security {deadline} unless a claim has been notified.",),
            ),
            Clause(
                "The {be} acknowledges receipt from the {ob} of {amount} by way of bond and undertakes to reimburse it in full "
                "{deadline}, save for amounts properly withheld for damage.",
                ("{BE} holds a {amount} bond from {OB} and must repay it, less damage, {deadline}.",),
            ),
        ),
        terms=deposit_terms,
    ),
    "delivery": ClauseKind(
        headings=("Delivery", "Time for Performance", "Delay"),
        roles={
            "Supply Agreement": ("Supplier", "Buyer"),
            "Service Agreement": ("Provider", "Client"),
            "Consulting Agreement": ("Consultant", "Client"),
        },
        seen=(
            Clause(
                "The {ob} shall deliver {goods} to the {be} {deadline}. If delivery is late, the {ob} shall pay liquidated damages of "
                "{penalty} of the contract price for each week of delay, up to a maximum of {cap}.",
                ("{OB} must deliver {goods} to {BE} {deadline}, paying {penalty} per week late, up to {cap}.",),
            ),
            Clause(
                "Time of delivery is of the essence. Delivery of {goods} must be made to the {be} {deadline}, failing which the {be} "
                "may deduct {penalty} of the price per week late from any sum owed to the {ob}, up to {cap} in total.",
                ("{OB} must deliver {goods} {deadline}; {BE} may deduct {penalty} per late week, up to {cap}.",),
            ),
            Clause(
                "The {ob} undertakes to complete delivery of {goods} {deadline}. For each week or part week of delay the {be} is "
                "entitled to a price reduction of {penalty}, which shall not exceed {cap} in total.",
                ("{OB} must deliver {goods} to {BE} {deadline} or cut the price {penalty} weekly, up to {cap}.",),
            ),
        ),
        unseen=(
            Clause(
                "Should delivery of {goods} to the {be} not take place {deadline}, the {ob} shall compensate the {be} at a rate of "
                "{penalty} of the order value per week, and the {be} may cancel the order once that compensation reaches {cap}.",
                ("{OB} must deliver {goods} {deadline} or pay {BE} {penalty} weekly; {BE} may cancel at {cap}.",),
            ),
            Clause(
                "The {be} shall receive {goods} from the {ob} {deadline}. Late performance entitles the {be} to a service credit of "
                "{penalty} per week of delay, subject to an overall cap of {cap}.",
                ("{OB} must deliver {goods} to {BE} {deadline}; delay earns {penalty} weekly credits, up to {cap}.",),
            ),
        ),
        terms=delivery_terms,
    ),
    "indemnity": ClauseKind(
        headings=("Indemnity", "Indemnification", "Third-Party Claims"),
        roles={**PROVIDERS, "Lease": ("Tenant", "Landlord")},
        seen=(
            Clause(
                "The {ob} shall indemnify the {be} against all losses, damages and costs arising from any third-party claim caused by "
                "the negligence of the {ob}, up to a total of {cap}. The {be} must notify the {ob} of any claim {deadline}.",
                ("{OB} indemnifies {BE} for negligence claims up to {cap} if notified {deadline}.",),
            ),
            Clause(
                "Subject to the {be} giving written notice of the claim {deadline}, the {ob} shall defend and hold harmless the {be} "
                "from any claim that work of the {ob} infringes third-party rights. Liability under this clause is capped at {cap}.",
                ("{OB} must defend {BE} against infringement claims, capped at {cap}, if notified {deadline}.",),
            ),
            Clause(
                "The {ob} agrees to reimburse the {be} for any fines, losses or legal fees resulting from a breach of law by the {ob}, "
                "subject to a limit of {cap} per claim, provided the {be} reports each claim {deadline}.",
                ("{OB} reimburses {BE} for its breaches of law, up to {cap} per claim reported {deadline}.",),
            ),
        ),
        unseen=(
            Clause(
                "The {be} shall be kept fully indemnified by the {ob} in respect of personal injury or property damage caused by staff "
                "of the {ob}, to a maximum aggregate amount of {cap}, on condition that claims are notified {deadline}.",
                ("{OB} covers {BE} for injury or damage by its staff up to {cap}, if notified {deadline}.",),
            ),
            Clause(
                "Where any third party brings proceedings against the {be} arising out of acts of the {ob}, the {ob} shall bear the "
                "resulting costs up to {cap}. Notice of such proceedings must reach the {ob} {deadline}.",
                ("{OB} bears {BE}'s costs of third-party proceedings up to {cap}, given notice {deadline}.",),
            ),
        ),
        terms=indemnity_terms,
    ),
    "renewal": ClauseKind(
        headings=("Renewal", "Term and Renewal", "Extension"),
        roles={
            c: CONTRACTS[c][::-1]
            for c in ("Lease", "Service Agreement", "Licence Agreement", "Supply Agreement", "Equipment Rental Agreement")
        },
        seen=(
            Clause(
                "This {contract} shall renew automatically for successive periods of {period} unless either party gives notice of "
                "non-renewal at least {notice} before the end of the current term. On each renewal the fees increase by {increase}.",
                ("The {contract} of {OB} and {BE} renews for {period} unless cancelled {notice} ahead; fees rise {increase}.",),
            ),
            Clause(
                "At the end of the initial term, this {contract} continues for a further {period} unless the {ob} notifies the {be} "
                "in writing no later than {notice} before expiry. Charges for the renewed term rise by {increase}.",
                ("The {contract} extends by {period} unless {OB} gives {BE} {notice}' notice; charges rise {increase}.",),
            ),
            Clause(
                "The {ob} may renew this {contract} for one additional term of {period} by giving the {be} written notice at least "
                "{notice} before the expiry date, on identical terms save that the price shall increase by {increase}.",
                ("{OB} may renew the {contract} with {BE} for {period} by giving {notice}' notice, at a {increase} higher price.",),
            ),
        ),
        unseen=(
            Clause(
                "Unless terminated by either party on not less than {notice}' notice, the term of this {contract} rolls over for "
                "{period} at a time, with an uplift of {increase} applied to the rent or fees on each rollover.",
                ("The {contract} of {OB} and {BE} rolls over every {period} absent {notice}' notice, with a {increase} uplift.",),
            ),
            Clause(
                "The {be} grants the {ob} an option to extend this {contract} by {period}, exercisable by notice served at least "
                "{notice} before the current term expires; the extended term carries a {increase} price increase.",
                ("{OB} may extend the {contract} with {BE} by {period} on {notice}' notice, at a {increase} higher price.",),
            ),
        ),
        terms=renewal_terms,
    ),
    "non_compete": ClauseKind(
        headings=("Non-Competition", "Restrictive Covenants", "Non-Solicitation"),
        roles={"Employment Contract": ("Employee", "Employer"), "Consulting Agreement": ("Consultant", "Client")},
        seen=(
            Clause(
                "For {period} after this {contract} ends, the {ob} shall not engage in any business that competes with the {be} "
                "within {radius} of its principal office. A breach of this clause obliges the {ob} to pay liquidated damages of {damages}.",
                ("{OB} may not compete with {BE} within {radius} for {period}, or pays {damages}.",),
            ),
            Clause(
                "The {ob} agrees that during the {contract} and for {period} thereafter, the {ob} will not solicit any client or "
                "employee of the {be}. Each breach entitles the {be} to a payment of {damages}.",
                ("{OB} may not solicit {BE}'s clients or staff for {period}; each breach costs {damages}.",),
            ),
            Clause(
                "The {ob} shall not, for a period of {period} from the termination date, be employed by or provide services to a "
                "competitor of the {be} operating within {radius}. Breach gives rise to a penalty of {damages}.",
                ("{OB} may not work for {BE}'s competitors within {radius} for {period}; penalty {damages}.",),
            ),
        ),
        unseen=(
            Clause(
                "Having regard to the goodwill of the {be}, the {ob} covenants not to set up or join a rival undertaking within "
                "{radius} for {period} following departure, failing which agreed compensation of {damages} becomes payable.",
                ("{OB} must not join or start a rival to {BE} within {radius} for {period}, or pay {damages}.",),
            ),
            Clause(
                "Throughout the {period} following the end of the engagement, the {ob} must refrain from approaching customers of "
                "the {be} with competing offers; the {be} may claim {damages} for every such approach.",
                ("{OB} must not court {BE}'s customers for {period}; each approach costs {damages}.",),
            ),
        ),
        terms=non_compete_terms,
    ),
    "loan_repayment": ClauseKind(
        headings=("Repayment", "Repayment and Interest", "Instalments"),
        roles={"Loan Agreement": ("Borrower", "Lender")},
        seen=(
            Clause(
                "The {ob} shall repay the principal of {principal} to the {be} in equal monthly instalments of {instalment}, together "
                "with interest at {rate} per annum, so that the loan is repaid in full {deadline}.",
                ("{OB} repays {BE}'s {principal} loan at {rate} a year, {instalment} monthly, in full {deadline}.",),
            ),
            Clause(
                "The {be} has advanced {principal} to the {ob}. Interest accrues at {rate} per year on the outstanding balance. The "
                "{ob} shall pay {instalment} on the first day of every month and shall pay any remaining balance {deadline}.",
                ("{OB} borrowed {principal} from {BE} at {rate} a year, paying {instalment} monthly and the balance {deadline}.",),
            ),
            Clause(
                "The loan of {principal} made by the {be} carries interest at {rate} annually. The {ob} must make monthly payments "
                "of {instalment} and shall discharge the entire outstanding debt {deadline}.",
                ("{OB} borrowed {principal} from {BE} at {rate} a year, paying {instalment} monthly and the balance {deadline}.",),
            ),
        ),
        unseen=(
            Clause(
                "Monthly instalments of {instalment} shall be remitted by the {ob} until the advance of {principal}, plus interest "
                "calculated at {rate} per annum, has been cleared, and in any event {deadline}.",
                ("{OB} pays {BE} {instalment} monthly on a {principal} advance at {rate}, cleared {deadline}.",),
            ),
            Clause(
                "The {be} lends the {ob} {principal}. The {ob} undertakes to repay it, with interest at a fixed rate of {rate} a "
                "year, through instalments of {instalment} per month, the final instalment falling due {deadline}.",
                ("{OB} borrowed {principal} from {BE} at {rate} a year, paying {instalment} monthly and the balance {deadline}.",),
            ),
        ),
        terms=loan_terms,
    ),
    "liability_cap": ClauseKind(
        headings=("Limitation of Liability", "Liability", "Cap on Liability"),
        roles=PROVIDERS,
        seen=(
            Clause(
                "The total liability of the {ob} to the {be} arising under or in connection with this {contract} shall not exceed "
                "{cap}. No claim may be brought unless notified in writing {deadline}.",
                ("{OB}'s liability to {BE} is capped at {cap}, and claims must be notified {deadline}.",),
            ),
            Clause(
                "Except for fraud or death and personal injury, the {ob} shall not be liable to the {be} for more than {cap} in "
                "aggregate. The {be} must commence any claim {deadline}.",
                ("Fraud and injury aside, {OB}'s liability to {BE} is capped at {cap}; claims start {deadline}.",),
            ),
            Clause(
                "The liability of the {ob} for any loss suffered by the {be} is limited to {cap} per year of this {contract}, and "
                "the {be} waives any claim not raised {deadline}.",
                ("{OB}'s liability to {BE} is limited to {cap} a year; claims not raised {deadline} are waived.",),
            ),
        ),
        unseen=(
            Clause(
                "In no event shall the aggregate amount recoverable by the {be} from the {ob} exceed {cap}, and the {ob} has no "
                "liability for any claim that is not notified {deadline}.",
                ("{BE} can recover at most {cap} from {OB}, and only for claims notified {deadline}.",),
            ),
            Clause(
                "The {be} accepts that {cap} represents the maximum compensation payable by the {ob} for all breaches of this "
                "{contract} combined, provided any claim is raised {deadline}.",
                ("{OB} pays {BE} at most {cap} for all breaches combined, for claims raised {deadline}.",),
            ),
        ),
        terms=liability_terms,
    ),
}


def fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def document_hash(text: str) -> str:
    """Hash of the lower-cased words only: case, punctuation and spacing do not make a clause new."""
    return hashlib.sha256(" ".join(re.findall(r"\w+", text.lower())).encode()).hexdigest()


def make_row(rng: random.Random, shifted: bool) -> tuple[str, str, list[str]]:
    d = Draw(rng, shifted)
    kind = KINDS[rng.choice(sorted(KINDS))]
    contract = rng.choice(sorted(kind.roles))
    ob_role, be_role = kind.roles[contract]
    if kind.either_side and rng.random() < 0.5:
        ob_role, be_role = be_role, ob_role
    names = {ob_role: d.party(ob_role)}
    names[be_role] = d.party(be_role)
    while names[be_role] == names[ob_role]:
        names[be_role] = d.party(be_role)
    r1, r2 = CONTRACTS[contract] if rng.random() < 0.5 else CONTRACTS[contract][::-1]
    preamble = d.pick(PREAMBLES, 0.5).format(contract=contract, n1=names[r1], r1=r1, n2=names[r2], r2=r2, signed=d.date(2021, 2024))
    clause = rng.choice(kind.unseen if shifted and rng.random() < 0.5 else kind.seen)
    terms = kind.terms(d, contract)
    summary_template = rng.choice(clause.summaries)
    body = clause.body.format(ob=ob_role, be=be_role, contract=contract, **{k: t.document for k, t in terms.items()})
    parts = [preamble]
    if rng.random() < 0.5:
        parts.append(f"{rng.randint(2, 14)}.{rng.randint(1, 9)} {rng.choice(kind.headings)}.")
    parts.append(body[0].upper() + body[1:])
    parts += [d.pick(BOILERPLATE, 0.5).format(contract=contract) for _ in range(rng.choice([0, 0, 1, 1, 2]))]
    document = " ".join(parts)
    summary = summary_template.format(OB=names[ob_role], BE=names[be_role], contract=contract, **{k: t.summary for k, t in terms.items()})
    keyed_in_body = {k for k in fields(clause.body) if k in terms and terms[k].key}
    keyed_in_summary = {k for k in fields(summary_template) if k in terms and terms[k].key}
    check(keyed_in_body == keyed_in_summary, f"clause and summary disagree on key fields: {clause.body!r} vs {summary_template!r}")
    key_terms = [names[ob_role], names[be_role]] + [t.key for k, t in terms.items() if k in keyed_in_summary and t.key]
    for term in key_terms:
        check(term in document and term in summary, f"key term {term!r} missing from {document!r} or {summary!r}")
    check(len(document.split()) < MAX_DOCUMENT_WORDS, f"document too long: {document!r}")
    return document, summary, list(dict.fromkeys(key_terms))


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def generate(n: int, seed: int, shifted: bool, taken: set[str]) -> list[tuple[str, str, list[str]]]:
    """`shifted` rows may use held-out names, wordings and formats; `taken` holds the hashes of every clause already written."""
    rng = random.Random(seed)
    rows: list[tuple[str, str, list[str]]] = []
    while len(rows) < n:
        row = make_row(rng, shifted)
        digest = document_hash(row[0])
        if digest not in taken:
            taken.add(digest)
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", "--out-dir", dest="out", default=str(DEFAULT_OUT))
    parser.add_argument("--seed", type=int, default=29)
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    for offset, (split, size) in enumerate(SIZES.items()):
        rows = generate(size, args.seed + offset, shifted=split != "train", taken=taken)
        path = out_dir / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["document", "summary", "key_terms"])
            writer.writerows((document, summary, json.dumps(terms, ensure_ascii=False)) for document, summary, terms in rows)
        print(f"wrote {len(rows)} rows to {path}")


if __name__ == "__main__":
    main()
