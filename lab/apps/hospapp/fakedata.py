"""Realistic FAKE patient data, generated deterministically from a seed.

The app plants these values in its logs (and some in its tables) so that log redaction and backup
confidentiality can be tested against values a test can know in advance:

- Chinese names (张伟),
- 18-digit resident ID-card numbers with a valid GB 11643-1999 check character,
- mobile numbers matching ``1[3-9]\\d{9}``,
- medical record numbers ``MRN`` + 8 digits, and 病案号 ``BA`` + year + 6 digits,
- bank card numbers (UnionPay prefixes) passing the Luhn check.

``patient_records(seed, count)`` is the function for tests: the app uses ``patient_records(seed,
POOL_SIZE)`` and cycles through it, so the same call in a test yields every value the app can log.
No value here belongs to a real person; the area codes and card prefixes are real so that
pattern-based detectors see them as plausible.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from datetime import date, timedelta

POOL_SIZE = 64
DEFAULT_SEED = 20240601

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

# Real county-level division codes (GB/T 2260), Fujian first.
AREA_CODES = (
    "350102", "350103", "350104", "350105", "350111", "350203", "350206", "350322", "350521",
    "110101", "110105", "310104", "310115", "320106", "330106", "440106", "440305", "510107",
)
MOBILE_PREFIXES = ("130", "133", "135", "136", "138", "139", "150", "152", "158", "159", "166", "177",
                   "180", "186", "187", "189", "191", "199")
# UnionPay debit card BINs of large banks (ICBC, ABC, CCB, BOC, CMB, PSBC).
CARD_BINS = ("622202", "622848", "621700", "621661", "622588", "621799")
SURNAMES = "张王李赵刘陈杨黄周吴林郑徐孙马朱胡郭何高罗梁宋谢叶"
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
         "秀英", "桂英", "建华", "志强", "晓明", "婷婷", "丽华", "国强", "海燕", "文杰", "子涵", "欣怡")

ID_CARD_RE = re.compile(r"(?<!\d)\d{17}[\dX](?!\d)")
MOBILE_RE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
MRN_RE = re.compile(r"MRN\d{8}(?!\d)")
CASE_NO_RE = re.compile(r"BA\d{10}(?!\d)")


@dataclass(frozen=True)
class PatientRecord:
    name: str
    gender: str  # "M" / "F", agrees with the ID-card sequence digit
    birth_date: str  # ISO date, agrees with the ID card
    id_card: str
    mobile: str
    mrn: str  # medical record number, MRN + 8 digits
    case_no: str  # 病案号, BA + year + 6 digits
    bank_card: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def values(self) -> tuple[str, ...]:
        """The sensitive values (what a redactor must remove)."""
        return (self.name, self.id_card, self.mobile, self.mrn, self.case_no, self.bank_card)


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID-card number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def id_card_valid(number: str) -> bool:
    """True when ``number`` is 18 characters with a real birth date and a correct check character."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return id_check_char(number[:17]) == number[17]


def make_id_card(area: str, birth: date, sequence: int) -> str:
    """An ID-card number; an odd ``sequence`` (0-999) means male, even female."""
    first17 = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return first17 + id_check_char(first17)


def luhn_check_digit(partial: str) -> str:
    """The digit to append to ``partial`` so the whole number passes the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or len(number) < 2:
        return False
    return luhn_check_digit(number[:-1]) == number[-1]


def make_bank_card(rng: random.Random) -> str:
    length = rng.choice((16, 19, 19))
    partial = rng.choice(CARD_BINS) + "".join(str(rng.randrange(10)) for _ in range(length - 7))
    return partial + luhn_check_digit(partial)


def _record(rng: random.Random) -> PatientRecord:
    name = rng.choice(SURNAMES) + rng.choice(GIVEN)
    birth = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 80))
    sequence = rng.randrange(1000)
    gender = "M" if sequence % 2 else "F"
    mobile = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    mrn = f"MRN{rng.randrange(10**8):08d}"
    case_no = f"BA{rng.randrange(2015, 2026)}{rng.randrange(10**6):06d}"
    return PatientRecord(
        name=name,
        gender=gender,
        birth_date=birth.isoformat(),
        id_card=make_id_card(rng.choice(AREA_CODES), birth, sequence),
        mobile=mobile,
        mrn=mrn,
        case_no=case_no,
        bank_card=make_bank_card(rng),
    )


def patient_records(seed: int = DEFAULT_SEED, count: int = POOL_SIZE) -> list[PatientRecord]:
    """``count`` fake patients; the same seed always yields the same list (prefixes are stable too)."""
    rng = random.Random(f"hospapp-fake-patients:{seed}")
    return [_record(rng) for _ in range(count)]


def describe(p: PatientRecord) -> str:
    """The patient as an application log fragment, every sensitive value included."""
    return (f"患者 {p.name} 身份证 {p.id_card} 手机 {p.mobile} {p.mrn} "
            f"病案号 {p.case_no} 银行卡 {p.bank_card}")
