"""Tests for workbench.redact: detectors, look-alikes, placeholders, JSON, leak scan, corpus scores."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ConfigError
from workbench.redact import (
    KINDS,
    Finding,
    find,
    redact,
    redact_html,
    redact_json,
    redact_shapes,
    scan,
)

CORPUS = Path(__file__).parent / "data" / "redaction_corpus.jsonl"


def _kinds_and_texts(text: str, kinds: tuple[str, ...] = KINDS) -> list[tuple[str, str]]:
    """Findings as (kind, text) pairs, the shape the tables below are written in."""
    return [(f.kind, f.text) for f in find(text, kinds)]


# --- detectors: positives --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe@example.com today", "jane.doe@example.com"),
        ("plus addressing: billing+eu@acme-corp.io.", "billing+eu@acme-corp.io"),
        ("subdomains: a.b@mail.support.example.co.uk", "a.b@mail.support.example.co.uk"),
        ("<Sam.Lee@Example.COM>", "Sam.Lee@Example.COM"),
        ("mailto:press@example.org", "press@example.org"),
        ("accents: jürgen.müller@beispiel.de, ok?", "jürgen.müller@beispiel.de"),
        ("メールはtanaka@example.jpです", "tanaka@example.jp"),
        ("邮箱是wang.fang@example.cn，谢谢", "wang.fang@example.cn"),
        ("full-width at: ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        ("obfuscated: jane.doe[at]example[dot]com", "jane.doe[at]example[dot]com"),
        ("obfuscated: jane (at) example (dot) org", "jane (at) example (dot) org"),
        ("Georgian: ნათია.გვენეტაძე@hotmail.com", "ნათია.გვენეტაძე@hotmail.com"),
        ("Armenian Նորայր.Նալչադյան@example.am, ok", "Նորայր.Նալչադյան@example.am"),
        ("мій email Лукʼян@i.ua.", "Лукʼян@i.ua"),
        ("E-mail: Məleykə.Şahbuzlu@example.az", "Məleykə.Şahbuzlu@example.az"),
        ("login හරූන්.ප්\u200dරනාන්දු@example.lk ok", "හරූන්.ප්\u200dරනාන්දු@example.lk"),
    ],
)
def test_email_found(text: str, expected: str) -> None:
    assert _kinds_and_texts(text) == [("EMAIL", expected)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call (415) 555-0132 now", "(415) 555-0132"),
        ("cell 415-555-0132.", "415-555-0132"),
        ("cell 415.555.0132", "415.555.0132"),
        ("toll free 1-800-555-0199", "1-800-555-0199"),
        ("made-up exchange (555) 010-9999", "(555) 010-9999"),
        ("US +1 415 555 0132", "+1 415 555 0132"),
        ("US +1 (415) 555-0132", "+1 (415) 555-0132"),
        ("UK +44 20 7946 0958", "+44 20 7946 0958"),
        ("UK +44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
        ("UK 020 7946 0958", "020 7946 0958"),
        ("UK mobile 07700 900461", "07700 900461"),
        ("UK 0161 496 0742", "0161 496 0742"),
        ("DE +49 30 12345678", "+49 30 12345678"),
        ("DE 030 12345678", "030 12345678"),
        ("DE 089/1234567", "089/1234567"),
        ("DE (030) 12345678", "(030) 12345678"),
        ("DE +49 (0) 30 1234567-0", "+49 (0) 30 1234567-0"),
        ("FR +33 1 23 45 67 89", "+33 1 23 45 67 89"),
        ("FR 01 23 45 67 89", "01 23 45 67 89"),
        ("FR 06.12.34.56.78", "06.12.34.56.78"),
        ("JP 03-1234-5678", "03-1234-5678"),
        ("JP 090-1234-5678", "090-1234-5678"),
        ("JP +81 3-1234-5678", "+81 3-1234-5678"),
        ("ES 612 34 56 78", "612 34 56 78"),
        ("ES +34 612 345 678", "+34 612 345 678"),
        ("compact +4915123456789", "+4915123456789"),
        ("intl prefix 0044 20 7946 0958", "0044 20 7946 0958"),
        ("Phone: 4155550132", "4155550132"),
        ("Tel. 030123456789", "030123456789"),
        ("電話番号：0312345678", "0312345678"),
        ("Rufen Sie an: 0151 23456789!", "0151 23456789"),
        ("電話０３－１２３４－５６７８まで", "０３－１２３４－５６７８"),
        (
            "no-break spaces 01\u00a023\u00a045\u00a067\u00a089",
            "01\u00a023\u00a045\u00a067\u00a089",
        ),
        ("+44 20 7946 0958 2026", "+44 20 7946 0958"),
        ("Rückruf bitte an 25 17 72, ab 14 Uhr", "25 17 72"),
        ("Meine neue Handynummer lautet 22 56 34.", "22 56 34"),
        ("Hringdu í mig í síma 617 1304.", "617 1304"),
        ("if nobody answers try (022) 39542 ext. 70328.", "(022) 39542 ext. 70328"),
        ("Best, Marcela | 321 1231771 ext 98843", "321 1231771 ext 98843"),
        ("08325111 is my new number, the old one is gone", "08325111"),
        ("612.30.86.39 is my new number", "612.30.86.39"),
        ("40.60.15.22 is my new number", "40.60.15.22"),
        ("Can someone call me? 2314175 (mobile, after 6pm)", "2314175"),
        ("my colleague (05386/48069011) will call", "05386/48069011"),
        ("Glaoigh orm ar (022) 87807.", "(022) 87807"),
        ("Joignable au 012.37.46.99 en semaine.", "012.37.46.99"),
        ("मलाई 9805188104 मा फोन गर्नुहोस्।", "9805188104"),
        ("Meine Festnetznummer ist 239-10-38.", "239-10-38"),
        ("Direct line 324 7441, backup email below", "324 7441"),
    ],
)
def test_phone_found(text: str, expected: str) -> None:
    assert _kinds_and_texts(text) == [("PHONE", expected)]


@pytest.mark.parametrize(
    "number",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "3782 822463 10005",
        "6011 0009 9013 9424",
        "30569309025904",
        "4222222222222",
        "6200 0000 0000 0005",
    ],
)
def test_card_found(number: str) -> None:
    assert _kinds_and_texts(f"card {number}, exp 12/28") == [("CARD", number)]


@pytest.mark.parametrize(
    "address",
    [
        "192.168.1.10",
        "8.8.8.8",
        "255.255.255.255",
        "2001:db8::1",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "fe80::1ff:fe23:4567:890a%eth0",
        "::ffff:192.0.2.128",
    ],
)
def test_ip_found(address: str) -> None:
    assert _kinds_and_texts(f"from {address}, blocked") == [("IP", address)]


def test_a_number_listed_after_a_phone_is_a_phone() -> None:
    text = "For the callback use +380 68 179-39-44; if nobody answers try 727-15-27."
    assert _kinds_and_texts(text) == [("PHONE", "+380 68 179-39-44"), ("PHONE", "727-15-27")]
    assert _kinds_and_texts("call 020 7946 0958, order 12345678") == [("PHONE", "020 7946 0958")]
    # Not after a version cue, nor a coordinate, a version or a timestamp however near.
    for text, phone in [
        ("Telefonszám: +36 1 234 7299 GPS fix at 56.7695, -30.0371", "+36 1 234 7299"),
        ("Tel: +32450007109 After updating to 12.6.19.115 the app crashes", "+32450007109"),
        ("手机号码 18479298125 event at 1503710152053 ms, retried at 1513050631 s", "18479298125"),
    ]:
        assert _kinds_and_texts(text) == [("PHONE", phone)], text


def test_cue_words_need_a_word_boundary() -> None:
    # "ver" (a version cue) ends "server"; "order" ends "reorder"; "case" ends "showcase".
    assert _kinds_and_texts("server 10.0.0.1 is down") == [("IP", "10.0.0.1")]
    assert _kinds_and_texts("reorder 020 7946 0958") == [("PHONE", "020 7946 0958")]
    assert _kinds_and_texts("showcase 0161 496 0742") == [("PHONE", "0161 496 0742")]
    assert find("reorder #5512349, order 020 7946 0958, version 10.0.0.1") == []


def test_ip_with_port_and_brackets_keeps_only_the_address() -> None:
    assert _kinds_and_texts("http://10.0.0.1:8080/x and [2001:db8::42]:443") == [
        ("IP", "10.0.0.1"),
        ("IP", "2001:db8::42"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "key sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xY5zA7b",
            "sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW0xY5zA7b",
        ),
        ("key sk-9xQ2wE4rT6yU8iO0pA1sD3fG5h.", "sk-9xQ2wE4rT6yU8iO0pA1sD3fG5h"),
        ("sk-ant-api03-Xk3mP9qR2sT7vW1yZ4bC6dF8gH0j", "sk-ant-api03-Xk3mP9qR2sT7vW1yZ4bC6dF8gH0j"),
        ("id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
        ("ghp_R4nd0mF4k3T0k3nF0rT3st1ngPurp0s3s123", "ghp_R4nd0mF4k3T0k3nF0rT3st1ngPurp0s3s123"),
        ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
        ("ghs_abcdefghijklmnopqrstuvwxyz0123456789", "ghs_abcdefghijklmnopqrstuvwxyz0123456789"),
        ("github_pat_11ABCDEFG0123456789_abcdefghij", "github_pat_11ABCDEFG0123456789_abcdefghij"),
        ("xoxb-123456789012-AbCdEfGhIjKl", "xoxb-123456789012-AbCdEfGhIjKl"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("glpat-xY7vB3nM9qR2sT5wZ8aC", "glpat-xY7vB3nM9qR2sT5wZ8aC"),
        ("npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8", "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
        ("hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567", "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"),
        ("Cookie: sessionid=8f14e45fceea167a5a36; Path=/", "8f14e45fceea167a5a36"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
        ("sk_live_51HxYzAbCdEfGhIjKlMnOpQr", "sk_live_51HxYzAbCdEfGhIjKlMnOpQr"),
        ("rk_live_4eC39HqLyjWDarjtT1zdp7dc", "rk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("pk_live_51HxYzQwErTyUiOpAsDfGh", "pk_live_51HxYzQwErTyUiOpAsDfGh"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        ),
        ("Authorization: Bearer 9f8e7d6c5b4a39281706f5e4", "9f8e7d6c5b4a39281706f5e4"),
        ("Authorization: Basic YWRtaW46aHVudGVyMjI=", "YWRtaW46aHVudGVyMjI="),
        ("api_key=a1b2c3d4e5f6", "a1b2c3d4e5f6"),
        ('"api_key": "abc123def456"', "abc123def456"),
        ("token: 7c4a8d09ca3762af61e5", "7c4a8d09ca3762af61e5"),
        ("password='hunter2'", "hunter2"),
        ("DB_PASSWORD=Pa55w0rd!x", "Pa55w0rd!x"),
        ('{\\"password\\": \\"s3cr3t!\\"}', "s3cr3t!"),
        ("x-api-key: 3f9a8b7c6d5e4f3a2b1c", "3f9a8b7c6d5e4f3a2b1c"),
        ("Passwort: Geheim!2024", "Geheim!2024"),
        ("my password is hunter2, thanks", "hunter2"),
        ("postgres://app:s3cr3t-P4ss@db.internal:5432/x", "s3cr3t-P4ss"),
        ("Pwd for the test tenant: Winter1975 (please rotate it)", "Winter1975"),
        ("password for user admin = s=2o7724QzboC", "s=2o7724QzboC"),
        ("пароль от тестового стенда: Qw(e)rty&123", "Qw(e)rty&123"),
        ("lykilorð: ^%Nbgcugrz5", "^%Nbgcugrz5"),
        ("şifrə: Q+17cN@f", "Q+17cN@f"),
        ("ŞİFRƏ: Ab(3)xxZ9 İstanbul", "Ab(3)xxZ9"),
        ("პაროლი: Tb1l1s!2024", "Tb1l1s!2024"),
        ("fjalëkalimi: Tir4na#77", "Tir4na#77"),
        ("my password is yiZHEy((O_9 if you need it", "yiZHEy((O_9"),
        ("пароль: NAbR(vA4))(ah", "NAbR(vA4))(ah"),
        ("Le mot de passe du compte de test est #yR5o7IkC", "#yR5o7IkC"),
        ("pasfhocal: F77KvcMb1", "F77KvcMb1"),
        ("Passwuert: 2TBdJBecp", "2TBdJBecp"),
    ],
)
def test_secret_found(text: str, expected: str) -> None:
    assert _kinds_and_texts(text) == [("SECRET", expected)]


def test_assignment_keeps_the_key_name() -> None:
    assert (
        redact('api_key="abc123def456" password=hunter22') == 'api_key="[SECRET]" password=[SECRET]'
    )


def test_pem_private_key_block_is_one_secret() -> None:
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeL\n-----END RSA PRIVATE KEY-----"
    assert redact(f"key:\n{pem}\nthanks") == "key:\n[SECRET]\nthanks"


def test_truncated_pem_block_is_redacted_up_to_the_prose() -> None:
    text = (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nand then the paste stopped"
    )
    assert redact(text) == "[SECRET]\nand then the paste stopped"


# --- detectors: look-alikes that must stay ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "shipped on 2026-11-23",
        "due 23/11/2026 and 23.11.2026",
        "at 14:30:00, 09:15 and 2024-03-05T14:22:31.123Z",
        "version 1.2.3, 10.4 and 2.14.0",
        "Firmware version 4.2.0.1 is required",
        "Windows 10.0.19045.3693",
        "Invoice INV-2024-00123",
        "order #5512349",
        "order 5512349 and case number 00234567",
        "total $1,234.56 or € 1.299,00 or ¥12,800",
        "ZIP 94107-1234, PLZ 10115",
        "tracking 1Z999AA10123456784",
        "USPS 9400 1000 0000 0000 0000 00",
        "FedEx 7489 2033 9511",
        "request 123e4567-e89b-12d3-a456-426614174000",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "commit a1b2c3d4e5f6",
        "colours #1A2B3C and #FF5733",
        "unix 1709648551, ms 1709648551123",
        "IP 999.1.1.1 and 01.02.03.04 are invalid",
        "MAC 00:1A:2B:3C:4D:5E",
        "std::vector and x[1::2] and Cafe::Bad",
        "Luhn-invalid 4111111111111112",
        "IMEI 356938035643809",
        "Serial no. 0123-4567-8901",
        "IBAN DE89 3704 0044 0532 0130 00",
        "ISBN 978-3-16-148410-0",
        "coordinates 52.5200, 13.4050",
        "Rechnung Nr. 2024-0815-17 vom 05.11.2024",
        "ご注文番号：2024112300123",
        "Order ref 7302-5518-2290-4471",
        "+1.5% growth and -40 to +85 °C",
        "the 1.2.3.4-style versioning",
        "an sk-learn model and a task-runner",
        "OPENAI_API_KEY=sk-abc",
        '{"max_tokens": 1024, "prompt_tokens": 812, "token_type": "bearer"}',
        "api_key=os.environ['OPENAI_API_KEY'] and password=${DB_PASSWORD}",
        "password: ******** and token: expired and password is required",
        "Bearer authentication is required",
        "Card ending in 4242",
        "Refund 0096-0955-9765-5366 was issued",
        "phone 123456, call 12.05.26 or 25-12-24",
        "1709648551 is the number of seconds",
        "after updating to 12.17.10.21 the number changed",
        "Password reset link: https://example.com/r/abc123",
        "Password for the account: see the vault",
        "Password changed successfully on 2026-06-21, 08/20/2026 and 2027年05月25日.",
    ],
)
def test_look_alike_is_not_a_finding(text: str) -> None:
    assert find(text) == []


# --- API -------------------------------------------------------------------------------------


def test_placeholders_are_typed() -> None:
    text = "jane@example.com, +1 415 555 0132, 4111 1111 1111 1111, 10.0.0.1, AKIAIOSFODNN7EXAMPLE"
    assert redact(text) == "[EMAIL], [PHONE], [CARD], [IP], [SECRET]"


def test_find_reports_offsets_and_text() -> None:
    text = "mail jane@example.com or call 415-555-0132"
    assert find(text) == [
        Finding("EMAIL", 5, 21, "jane@example.com"),
        Finding("PHONE", 30, 42, "415-555-0132"),
    ]
    assert all(text[f.start : f.end] == f.text for f in find(text))


def test_kinds_limit_what_is_found() -> None:
    text = "jane@example.com from 10.0.0.1"
    assert redact(text, kinds=["IP"]) == "jane@example.com from [IP]"
    assert redact(text, kinds="EMAIL") == "[EMAIL] from 10.0.0.1"
    assert redact(text, kinds=()) == text


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'SSN'.*EMAIL, PHONE, CARD, IP, SECRET"):
        find("x", kinds=["EMAIL", "SSN"])


def test_overlap_keeps_the_higher_priority_kind() -> None:
    assert _kinds_and_texts("password=jane@example.com") == [("SECRET", "jane@example.com")]
    assert _kinds_and_texts("token: 4111111111111111") == [("SECRET", "4111111111111111")]


def test_overlap_within_a_kind_keeps_the_longer_match() -> None:
    text = 'password: "sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW and more"'
    assert _kinds_and_texts(text) == [("SECRET", "sk-proj-4fG7hJ2kL9mN3pQ8rS1tU6vW and more")]


def test_redact_json_redacts_string_values_only() -> None:
    value: dict[str, Any] = {
        "jane@example.com": "key stays",
        "user": {"email": "jane@example.com", "age": 41, "score": 0.5, "vip": True},
        "ips": ["10.0.0.1", None, 8080, ["call 415-555-0132"]],
        "note": "nothing here",
        "password": "hunter2",
        "OPENAI_API_KEY": "not-a-known-shape-42",
        "max_tokens": 512,
        "token_count": "12",
    }
    original = json.loads(json.dumps(value))
    assert redact_json(value) == {
        "jane@example.com": "key stays",
        "user": {"email": "[EMAIL]", "age": 41, "score": 0.5, "vip": True},
        "ips": ["[IP]", None, 8080, ["call [PHONE]"]],
        "note": "nothing here",
        "password": "[SECRET]",
        "OPENAI_API_KEY": "[SECRET]",
        "max_tokens": 512,
        "token_count": "12",
    }
    assert value == original


def test_token_fields_need_a_random_looking_value() -> None:
    logprobs = {"logprobs": [{"token": "Hello", "logprob": -0.1}, {"token": " 2024"}]}
    assert redact_json(logprobs) == logprobs
    assert find('{"token": "Hello", "logprob": -0.1}') == []
    assert redact_json({"password": "correct horse", "auth_token": "a1b2c3d4e5f6"}) == {
        "password": "[SECRET]",
        "auth_token": "[SECRET]",
    }


def test_redact_json_keeps_scalars_and_respects_kinds() -> None:
    assert redact_json(3) == 3
    assert redact_json(None) is None
    assert redact_json("jane@example.com") == "[EMAIL]"
    assert redact_json(("10.0.0.1", 1)) == ("[IP]", 1)
    assert redact_json({"password": "hunter2", "ip": "10.0.0.1"}, kinds=["IP"]) == {
        "password": "hunter2",
        "ip": "[IP]",
    }


def test_scan_finds_literal_needles_in_order_once() -> None:
    text = "log: sk-test-123 leaked twice: sk-test-123; also hunter2"
    assert scan(text, ["hunter2", "", "absent", "sk-test-123", "hunter2"]) == [
        "hunter2",
        "sk-test-123",
    ]
    assert scan(redact("key AKIAIOSFODNN7EXAMPLE"), ["AKIAIOSFODNN7EXAMPLE"]) == []


# --- properties ------------------------------------------------------------------------------

# Text built from the pieces detectors care about, so boundaries and overlaps get exercised.
_PIECES = st.sampled_from(
    [
        " ", "\n", ".", "-", ":", "::", "@", "+", "(", ")", "[", "]", "=", '"', "'", "/", "#",
        "0", "1", "4", "9", "00", "415", "555", "0132", "4111", "1111", "192.168.1.1",
        "jane", "example", "com", "sk-", "AKIA", "token", "password", "Bearer", "phone",
        "[EMAIL]", "[PHONE]", "[CARD]", "[IP]", "[SECRET]", "at", "[at]", "é", "電話", "\u00a0",
        "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----", "ABCDEFGHIJKLMNOP",
    ]
)  # fmt: skip
_TEXTS = st.one_of(st.text(max_size=300), st.lists(_PIECES, max_size=60).map("".join))


@settings(max_examples=300)
@given(_TEXTS)
def test_redact_never_raises_and_is_idempotent(text: str) -> None:
    once = redact(text)
    assert redact(once) == once
    assert find(once) == []


@settings(max_examples=200)
@given(_TEXTS)
def test_findings_are_sorted_disjoint_and_faithful(text: str) -> None:
    findings = find(text)
    assert all(f.text == text[f.start : f.end] and f.kind in KINDS for f in findings)
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


def _luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str((10 - total % 10) % 10)


# 16-digit numbers from issuer prefixes (Visa, Mastercard, Discover, JCB, UnionPay): a number no
# issuer starts that way (an ISBN, a millisecond timestamp) is not a card.
def _card(prefix: str, body: str, sep: str) -> str:
    """A Luhn-valid 16-digit number from an issuer prefix, in groups of four."""
    digits = _luhn_complete((prefix + body)[:15])
    return sep.join(digits[i : i + 4] for i in range(0, 16, 4))


# 16-digit numbers from issuer prefixes (Visa, Mastercard, Discover, JCB, UnionPay): a number no
# issuer starts that way (an ISBN, a millisecond timestamp) is not a card.
_CARDS = st.builds(
    _card,
    st.sampled_from(["4", "51", "55", "2221", "2720", "6011", "65", "3528", "62"]),
    st.text("0123456789", min_size=15, max_size=15),
    st.sampled_from(["", " ", "-"]),
)
_KEYS = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=40, max_size=40
).map(lambda body: f"sk-{body}")


# The card sits on its own line: glued to further digit groups ("1234 4111 1111 1111 1111") it
# is deliberately read as part of a longer number, the way tracking numbers are written.
@settings(max_examples=200)
@given(st.text(max_size=200), _CARDS, st.text(max_size=200))
def test_inserted_card_never_survives(before: str, card: str, after: str) -> None:
    assert card not in redact(f"{before}\n{card}\n{after}")


@settings(max_examples=200)
@given(st.text(max_size=200), _KEYS, st.text(max_size=200))
def test_inserted_key_never_survives(before: str, key: str, after: str) -> None:
    assert key not in redact(f"{before} {key} {after}")


# --- labelled corpus -------------------------------------------------------------------------


def _corpus() -> list[dict[str, Any]]:
    """The labelled lines of tests/data/redaction_corpus.jsonl."""
    with CORPUS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _labelled_spans(row: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Labelled (kind, start, end) spans; repeated texts match successive occurrences."""
    spans: list[tuple[str, int, int]] = []
    text: str = row["text"]
    next_from: Counter[str] = Counter()
    for span in row["spans"]:
        start = text.index(span["text"], next_from[span["text"]])
        next_from[span["text"]] = start + 1
        spans.append((span["kind"], start, start + len(span["text"])))
    return spans


def test_corpus_is_well_formed() -> None:
    rows = _corpus()
    assert len(rows) >= 150
    assert sum(1 for row in rows if not row["spans"]) >= 30
    kinds = Counter(span["kind"] for row in rows for span in row["spans"])
    assert set(kinds) == set(KINDS)
    for row in rows:
        _labelled_spans(row)  # every labelled text occurs in its line


def _overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    """Same kind and overlapping offsets."""
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def test_corpus_precision_and_recall() -> None:
    predicted, true_predicted, labelled, recalled = Counter(), Counter(), Counter(), Counter()
    for row in _corpus():
        gold = _labelled_spans(row)
        found = [(f.kind, f.start, f.end) for f in find(row["text"])]
        for p in found:
            predicted[p[0]] += 1
            true_predicted[p[0]] += any(_overlaps(p, g) for g in gold)
        for g in gold:
            labelled[g[0]] += 1
            recalled[g[0]] += any(_overlaps(g, p) for p in found)

    def ratio(hits: int, total: int) -> float:
        return hits / total if total else 1.0

    rows = {
        kind: (ratio(true_predicted[kind], predicted[kind]), ratio(recalled[kind], labelled[kind]))
        for kind in KINDS
    }
    rows["overall"] = (
        ratio(sum(true_predicted.values()), sum(predicted.values())),
        ratio(sum(recalled.values()), sum(labelled.values())),
    )
    table = "; ".join(f"{k} P={p:.3f} R={r:.3f}" for k, (p, r) in rows.items())
    overall_p, overall_r = rows.pop("overall")
    assert overall_p >= 0.95 and overall_r >= 0.95, table
    for kind, (p, r) in rows.items():
        assert p >= 0.9 and r >= 0.9, f"{kind} below 0.9: {table}"


# --- HTML and code ---------------------------------------------------------------------------


def test_redact_html_rewrites_text_and_attributes_only() -> None:
    markup = (
        "<div class='card' title=\"call +44 20 7946 0958\"><p>mail jane&#64;example.com &amp; co"
        "</p><a href=mailto:bob@example.org>bob</a><!-- host 10.0.0.1 --></div>"
    )
    assert redact_html(markup) == (
        "<div class='card' title=\"call [PHONE]\"><p>mail [EMAIL] &amp; co</p>"
        '<a href="mailto:[EMAIL]">bob</a><!-- host [IP] --></div>'
    )


def test_redact_html_leaves_clean_markup_byte_for_byte() -> None:
    markup = "<table><tr><td>&nbsp;a &lt;b&gt; 1.5</td><td data-x='1'>v2.3</td></tr></table>"
    assert redact_html(markup) == markup


def test_redact_html_touches_code_only_for_key_shapes() -> None:
    key = "ghp_" + "A1b2C3d4" * 5
    markup = (
        f'<script>var ip = "1.2.3.4", pad = "0000000000000", k = "{key}";</script>'
        f"<style>.x {{ width: 4111111111111111px }}</style>"
        f"<b onclick=\"go('jane@example.com', '{key}')\">x</b>"
    )
    assert redact_html(markup) == (
        '<script>var ip = "1.2.3.4", pad = "0000000000000", k = "[SECRET]";</script>'
        "<style>.x { width: 4111111111111111px }</style>"
        '<b onclick="go(&#x27;jane@example.com&#x27;, &#x27;[SECRET]&#x27;)">x</b>'
    )
    assert redact_shapes(f"a {key} b 10.0.0.1") == "a [SECRET] b 10.0.0.1"


def test_redact_html_keeps_plotly_working_and_redacts_its_labels() -> None:
    import plotly.graph_objects as go

    label = "</script><script>x()</script> jane@example.com"
    fig = go.Figure(go.Bar(x=[label, "b"], y=[1, 2]))
    markup = fig.to_html(full_html=False, include_plotlyjs=True)
    out = redact_html(markup)
    library = max(markup.split("<script"), key=len)
    assert library in out  # plotly.js itself is left byte for byte
    assert "jane@example.com" not in out and "[EMAIL]" in out
    assert "</script><script>x()" not in out  # the label stays escaped inside the script
    assert "\\u003c\\u002fscript\\u003e" in out
    assert out.count("<script") == markup.count("<script")


def test_minified_code_is_not_read_as_secrets() -> None:
    # plotly.js assigns to variables named "pw" and "PW" and has members such as "hasLines"
    # (once read as the Polish "hasło"); none of it is a credential.
    from plotly.offline import get_plotlyjs

    assert find(get_plotlyjs(), ["SECRET"]) == []
    for code, secret in [
        ("var pW=W((Nzr,B6e)=>{", False),
        ("Pw=Hge.CIRCLE_SIDES,vH=1", False),
        ("{hasLines:function(e){return e.visible}}", False),
        ("hasło: Ab(cd)e!x9", True),
        ("Nie pamiętam hasła Xy7(zzQQ", True),
        ("DB_PW=Hunter2!x", True),
    ]:
        assert bool(find(code, ["SECRET"])) is secret, code


def test_loopback_and_unspecified_addresses_stay() -> None:
    text = "receiver on http://127.0.0.1:4318, bound [::1]:8080 and 0.0.0.0; db at 10.1.2.3"
    assert (
        redact(text)
        == "receiver on http://127.0.0.1:4318, bound [::1]:8080 and 0.0.0.0; db at [IP]"
    )
    assert redact("from 127.10.0.5 and fe80::1ff:fe23:4567:890a") == "from 127.10.0.5 and [IP]"
