"""A labelled corpus for `workbench.redact`: support-ticket texts with the exact spans of personal data.

Every text is built from sentence templates whose fields are filled with Faker values (names,
emails, phone numbers, card numbers, IP addresses, passwords) or with generated key shapes and
look-alikes (order and tracking numbers, versions, ISBNs, timestamps, UUIDs, hashes, prices,
dates, hex colours, IDs). A PII field records its kind and its [start, end) offsets as it is
written into the text, so the labels are exact by construction. A secret's label is its value
only ("password: <value>"), the part `redact` replaces.

Three splits, each one or more rounds with their own seed (`_ROUNDS`), so the detectors are
tuned on some and judged on one they were never tuned on:

    TUNING    seed 1, the 14 locales of `TUNING_LOCALES`, the first template lists but every
              fourth template of each (`_held_out_template`), and the fixed `HARD_CASES` (the
              failures that motivated the rework)
    REVIEWED  the earlier held-out splits, each looked at once and then tuned on: seed 2 (plus
              `REVIEWED_LOCALES`, every template of the first lists), seed 3 (plus
              `SECOND_REVIEWED_LOCALES` and `_TEMPLATES_2`), seed 4 (plus
              `THIRD_REVIEWED_LOCALES` and `_TEMPLATES_3`), seed 5 (plus
              `FOURTH_REVIEWED_LOCALES` and `_TEMPLATES_4`)
    HELD_OUT  seed 6, every locale above plus the 10 of `HELD_OUT_LOCALES` (their phone
              formats, names and, for some, their language never seen while tuning), and every
              template, with `_TEMPLATES_5` and `_NEGATIVES_5` written for this split only

A held-out split is scored once. Then its failures are fixed as classes, not strings, and it
joins REVIEWED as one more round; a fresh held-out split takes its place: the next seed, locales
no round has used (appended to `_ALL_LOCALES`, so every older round keeps its texts), and a
template round written before the detectors see it.

Hard cases and look-alikes are generated too (a phone with an extension, a bare MSISDN after a
cue, a four-part version, a Luhn-valid ISBN or millisecond timestamp, a password with brackets,
a non-ASCII local part), so both splits get their own values of them.

Phone numbers come from Faker's locale formats (kept when libphonenumber deems them a possible
length for the locale's region: some Faker formats, such as es_MX's "+80(6)…", are no number
anywhere), from libphonenumber's example numbers with fresh digits in its national,
international and E.164 formats, and from hand-written variants (other separators, no
separators, extensions). Card numbers are Faker's Visa, Mastercard, Amex, Discover, Diners and
JCB numbers, bare or grouped with spaces or dashes.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

import phonenumbers
from faker import Faker

from workbench.redact import KINDS, find

__all__ = [
    "FOURTH_REVIEWED_LOCALES",
    "HARD_CASES",
    "HELD_OUT_LOCALES",
    "PRECISION_BAR",
    "RECALL_BAR",
    "REVIEWED_LOCALES",
    "SECOND_REVIEWED_LOCALES",
    "SPLITS",
    "THIRD_REVIEWED_LOCALES",
    "TUNING_LOCALES",
    "Labelled",
    "Score",
    "corpus",
    "redacted_spans",
    "score",
]

TUNING_LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "pt_BR", "it_IT", "nl_NL", "ja_JP", "zh_CN",
    "ru_RU", "hi_IN", "ko_KR", "pl_PL",
)  # fmt: skip
REVIEWED_LOCALES = (
    "en_AU", "en_CA", "en_IN", "en_NZ", "de_AT", "de_CH", "fr_CH", "es_MX", "pt_PT", "nl_BE",
    "zh_TW", "sv_SE", "da_DK", "fi_FI", "tr_TR", "cs_CZ", "uk_UA",
)  # fmt: skip
SECOND_REVIEWED_LOCALES = (
    "en_IE", "en_PH", "en_NG", "es_AR", "es_CL", "es_CO", "fr_BE", "fr_CA", "it_CH", "no_NO",
    "el_GR", "ro_RO", "hu_HU", "sk_SK", "hr_HR", "bg_BG", "lt_LT", "id_ID", "vi_VN", "th_TH",
    "he_IL",
)  # fmt: skip
THIRD_REVIEWED_LOCALES = (
    "de_LU", "en_KE", "en_PK", "es_VE", "et_EE", "lv_LV", "sl_SI", "bs_BA", "sq_AL", "mk_MK",
    "is_IS", "ka_GE", "hy_AM", "az_AZ", "fa_IR", "ar_EG", "bn_BD", "ta_IN", "zu_ZA", "mt_MT",
)  # fmt: skip
FOURTH_REVIEWED_LOCALES = (
    "am_ET", "ar_AE", "ar_SA", "de_LI", "el_CY", "en_BD", "fr_DZ", "ga_IE", "gu_IN", "ha_NG",
    "lb_LU", "mr_IN", "ne_NP", "si_LK", "sr_BA", "tw_GH", "uz_UZ", "yo_NG",
)  # fmt: skip
HELD_OUT_LOCALES = (
    "ar_BH", "ar_JO", "dk_DK", "en_MS", "en_TH", "es_CA", "fil_PH", "tl_PH", "ig_NG", "or_IN",
)  # fmt: skip
_REVIEWED_ROUNDS = (
    REVIEWED_LOCALES, SECOND_REVIEWED_LOCALES, THIRD_REVIEWED_LOCALES, FOURTH_REVIEWED_LOCALES,
)  # fmt: skip
# Appended in the order the rounds were written, so a locale's seed offset never changes.
_ALL_LOCALES = TUNING_LOCALES + sum(_REVIEWED_ROUNDS, ()) + HELD_OUT_LOCALES
SPLITS = ("tuning", "reviewed", "held_out")
# The issue's bars, per kind, on every split.
PRECISION_BAR, RECALL_BAR = 0.98, 0.97
# A split is one or more rounds: (seed, locales, template round, texts per locale).
_ROUNDS: dict[str, tuple[tuple[int, tuple[str, ...], int, int], ...]] = {
    "tuning": ((1, TUNING_LOCALES, 0, 170),),
    "reviewed": (
        (2, TUNING_LOCALES + REVIEWED_LOCALES, 1, 100),
        (3, TUNING_LOCALES + REVIEWED_LOCALES + SECOND_REVIEWED_LOCALES, 2, 80),
        (4, TUNING_LOCALES + sum(_REVIEWED_ROUNDS[:3], ()), 3, 60),
        (5, TUNING_LOCALES + sum(_REVIEWED_ROUNDS, ()), 4, 60),
    ),
    "held_out": ((6, _ALL_LOCALES, 5, 60),),
}


@dataclass(frozen=True)
class Labelled:
    """One text, its labelled (kind, start, end) spans, and where it came from."""

    text: str
    spans: tuple[tuple[str, int, int], ...]
    source: str


# ---------------------------------------------------------------------------------------------
# Templates. Fields: {email} {phone} {card} {ip} {key} {pw} {pwassign} {auth} {dburl} are PII
# (labelled); the rest are fillers, several of them look-alikes.

_EN = [
    "Hi, I can't log in. My account email is {email} and the reset link never arrives.",
    "Please call me back on {phone}, I'm free after 3pm.",
    "You can reach me at {phone} or by mail at {email}.",
    "My card {card} was charged twice for order {order}.",
    "Requests from {ip} are being blocked by your firewall since {date}.",
    "I pasted my API key {key} in the previous ticket by mistake, please delete it.",
    "Our .env has {pwassign} and the connection still fails.",
    "Login: {email} / password: {pw}",
    "my password is {pw} if you need to test the account",
    "Connection string: {dburl}",
    "curl -H '{auth}' https://api.example.com/v2/me returns 401",
    "Contact: {name}, {phone}, {email}",
    "Best regards,\n{name}\n{company}\nTel. {phone}",
    "{name} | Mobile: {phone} | {email}",
    "WhatsApp: {phone} (I don't check email often)",
    "Text me on {phone} when the technician is on the way.",
    "Customer {name} ({email}) reports the export button is greyed out.",
    "Billing contact {email}; phone {phone}.",
    "Card number: {card}, expiry {expiry}, name on card {name}.",
    "We see logins from {ip} and {ip} that aren't ours.",
    "The health check on {ip} fails after updating to {version}.",
    "Phone number: {phone}\nEmail: {email}\nOrder: {order}",
    "Please update the card on file to {card} before {date}.",
    "Our gateway ({ip}) drops the websocket after 60 seconds.",
    "The token {key} was revoked but still works?",
    "{phone} is my new number, the old one is disconnected.",
    "Reach me on {phone}, order {order} is late.",
    "Hey, it's {first}. Call {phone} or write to <{email}>.",
    "Secret rotated: {pwassign}",
    "The charge of {amount} on {card} is not mine.",
    'Server log: {ip} - - [{date}] "GET /orders/{order} HTTP/1.1" 500',
    "If it helps, the password I set was {pw}.",
]
_DE = [
    "Hallo, meine E-Mail-Adresse lautet {email}.",
    "Bitte rufen Sie mich unter {phone} zurück.",
    "Ich bin tagsüber unter {phone} erreichbar.",
    "Meine Kreditkarte {card} wurde doppelt belastet (Bestellung {order}).",
    "Die Anfragen von {ip} werden seit dem {date} blockiert.",
    "Passwort: {pw}",
    "Mein Passwort ist {pw}, bitte nach dem Test ändern.",
    "Mit freundlichen Grüßen\n{name}\nTel.: {phone}\nE-Mail: {email}",
    "Handy: {phone}",
    "Kennwort={pw} steht noch in der Konfiguration.",
    "Kontakt: {name}, {email}, Telefon {phone}",
    "Unser Server {ip} ist nach dem Update auf {version} nicht erreichbar.",
]
_FR = [
    "Bonjour, mon adresse e-mail est {email}.",
    "Vous pouvez me joindre au {phone}.",
    "Merci de me rappeler au {phone} avant 18h.",
    "Ma carte {card} a été débitée deux fois.",
    "Les requêtes depuis {ip} sont bloquées.",
    "mot de passe : {pw}",
    "Mon mot de passe est {pw}, je l'ai changé hier.",
    "Cordialement,\n{name}\nTél. : {phone}",
    "Portable : {phone} / e-mail : {email}",
    "Identifiant {email}, mdp : {pw}",
    "Le serveur {ip} ne répond plus depuis la mise à jour {version}.",
    "Commande {order} : paiement par carte {card} refusé.",
]
_ES = [
    "Hola, mi correo es {email}.",
    "Pueden llamarme al {phone}.",
    "Mi móvil es {phone}, llamen por la tarde.",
    "Me cobraron dos veces en la tarjeta {card}.",
    "Las peticiones desde {ip} están bloqueadas.",
    "contraseña: {pw}",
    "Mi contraseña es {pw} por si la necesitan.",
    "Saludos,\n{name}\nTel: {phone}",
    "Teléfono de contacto: {phone} / correo: {email}",
    "El servidor {ip} falla desde la versión {version}.",
    "Pedido {order}, tarjeta {card}.",
    "WhatsApp {phone}",
]
_PT = [
    "Olá, meu e-mail é {email}.",
    "Podem me ligar no {phone}.",
    "Meu celular: {phone}",
    "Meu cartão {card} foi cobrado duas vezes.",
    "As requisições de {ip} estão bloqueadas.",
    "senha: {pw}",
    "Minha senha é {pw}, troquei ontem.",
    "Atenciosamente,\n{name}\nTel.: {phone}",
    "Contato: {email} | WhatsApp: {phone}",
    "O servidor {ip} caiu depois da atualização para {version}.",
    "Pedido {order} pago com o cartão {card}.",
    "login {email} senha={pw}",
]
_IT = [
    "Buongiorno, la mia email è {email}.",
    "Potete chiamarmi al {phone}.",
    "Il mio cellulare è {phone}.",
    "La carta {card} è stata addebitata due volte.",
    "Le richieste da {ip} vengono bloccate.",
    "password: {pw}",
    "La mia password è {pw}.",
    "Cordiali saluti,\n{name}\nTel. {phone}",
    "Contatti: {email}, tel. {phone}",
    "Il server {ip} non risponde dopo l'aggiornamento alla {version}.",
    "Ordine {order}, carta {card}.",
    "chiamatemi al {phone} oppure scrivete a {email}",
]
_NL = [
    "Hallo, mijn e-mailadres is {email}.",
    "U kunt mij bellen op {phone}.",
    "Mijn mobiele nummer is {phone}.",
    "Mijn creditcard {card} is twee keer belast.",
    "Verzoeken vanaf {ip} worden geblokkeerd.",
    "wachtwoord: {pw}",
    "Mijn wachtwoord is {pw}.",
    "Met vriendelijke groet,\n{name}\nTel: {phone}",
    "Contact: {email} of {phone}",
    "Server {ip} is onbereikbaar sinds versie {version}.",
    "Bestelling {order}, betaald met {card}.",
    "Bel me op {phone} a.u.b.",
]
_JA = [
    "メールアドレスは{email}です。",
    "電話番号：{phone}",
    "{phone}までお電話ください。",
    "カード{card}で二重に請求されました。",
    "{ip}からのアクセスがブロックされています。",
    "パスワード：{pw}",
    "パスワードは {pw} です。",
    "連絡先：{email}、携帯 {phone}",
    "よろしくお願いします。\n{name}\nTEL {phone}",
    "サーバー{ip}がバージョン{version}に更新してから応答しません。",
    "注文番号{order}の件です。カードは{card}です。",
    "メール {email} にご連絡ください。",
]
_ZH = [
    "我的邮箱是{email}，谢谢。",
    "电话：{phone}",
    "请拨打{phone}联系我。",
    "我的银行卡{card}被扣了两次款。",
    "来自{ip}的请求被拦截了。",
    "密码：{pw}",
    "我的密码是 {pw}，测试完请修改。",
    "联系人：{name}，手机 {phone}，邮箱 {email}",
    "服务器{ip}升级到{version}后无法访问。",
    "订单号{order}，卡号{card}。",
    "手机号码 {phone}",
    "邮件请发到 {email} 。",
]
_RU = [
    "Здравствуйте, мой email {email}.",
    "Позвоните мне по номеру {phone}.",
    "Мой телефон: {phone}",
    "С моей карты {card} списали деньги дважды.",
    "Запросы с {ip} блокируются.",
    "пароль: {pw}",
    "Мой пароль {pw}, поменяю после проверки.",
    "С уважением,\n{name}\nтел. {phone}",
    "Контакты: {email}, {phone}",
    "Сервер {ip} не отвечает после обновления до {version}.",
    "Заказ {order}, оплата картой {card}.",
    "Пишите на {email} или звоните {phone}.",
]
_KO = [
    "제 이메일은 {email} 입니다.",
    "전화번호: {phone}",
    "{phone}로 연락 주세요.",
    "카드 {card}로 두 번 결제되었습니다.",
    "{ip}에서 오는 요청이 차단됩니다.",
    "비밀번호: {pw}",
    "비밀번호는 {pw} 입니다.",
    "연락처: {email} / 휴대폰 {phone}",
    "서버 {ip}가 {version} 업데이트 후 응답하지 않습니다.",
    "주문번호 {order}, 카드 {card}.",
    "{name} 드림\n전화 {phone}",
    "메일: {email}",
]
_PL = [
    "Dzień dobry, mój e-mail to {email}.",
    "Proszę o telefon pod numer {phone}.",
    "Mój numer telefonu: {phone}",
    "Z mojej karty {card} pobrano opłatę dwa razy.",
    "Żądania z {ip} są blokowane.",
    "hasło: {pw}",
    "Moje hasło to {pw}.",
    "Pozdrawiam,\n{name}\ntel. {phone}",
    "Kontakt: {email}, kom. {phone}",
    "Serwer {ip} nie działa po aktualizacji do {version}.",
    "Zamówienie {order}, karta {card}.",
    "Zadzwoń {phone}",
]
_HI = [
    "नमस्ते, मेरा ईमेल {email} है।",
    "मुझे {phone} पर कॉल करें।",
    "मेरा मोबाइल नंबर {phone} है।",
    "मेरे कार्ड {card} से दो बार पैसे कटे।",
    "{ip} से आने वाले अनुरोध ब्लॉक हो रहे हैं।",
    "पासवर्ड: {pw}",
    "मेरा पासवर्ड {pw} है।",
    "धन्यवाद,\n{name}\nफ़ोन: {phone}",
    "संपर्क: {email}, {phone}",
    "सर्वर {ip} संस्करण {version} के बाद बंद है।",
    "ऑर्डर {order}, कार्ड {card}.",
    "ईमेल: {email}",
]
# Languages that only the held-out locales write in.
_SV = [
    "Hej, min e-post är {email}.",
    "Ring mig på {phone}.",
    "lösenord: {pw}",
    "Mitt kort {card} debiterades två gånger.",
    "Med vänliga hälsningar\n{name}\nTel: {phone}",
    "Förfrågningar från {ip} blockeras.",
    "Mobil: {phone}",
    "Mitt lösenord är {pw}.",
]
_DA = [
    "Hej, min e-mail er {email}.",
    "Ring til mig på {phone}.",
    "adgangskode: {pw}",
    "Mit kort {card} blev trukket to gange.",
    "Venlig hilsen\n{name}\nTlf. {phone}",
    "Forespørgsler fra {ip} bliver blokeret.",
    "Mobil: {phone}",
    "Min adgangskode er {pw}.",
]
_FI = [
    "Hei, sähköpostini on {email}.",
    "Soittakaa numeroon {phone}.",
    "salasana: {pw}",
    "Korttiani {card} veloitettiin kahdesti.",
    "Ystävällisin terveisin\n{name}\npuh. {phone}",
    "Pyynnöt osoitteesta {ip} estetään.",
    "Puhelin: {phone}",
    "Salasanani on {pw}.",
]
_TR = [
    "Merhaba, e-posta adresim {email}.",
    "Beni {phone} numarasından arayabilirsiniz.",
    "şifre: {pw}",
    "Kartımdan ({card}) iki kez ödeme alındı.",
    "Saygılarımla,\n{name}\nTel: {phone}",
    "{ip} adresinden gelen istekler engelleniyor.",
    "Cep: {phone}",
    "Şifrem {pw}.",
]
_CS = [
    "Dobrý den, můj e-mail je {email}.",
    "Zavolejte mi na {phone}.",
    "heslo: {pw}",
    "Z mé karty {card} byla platba stržena dvakrát.",
    "S pozdravem\n{name}\ntel. {phone}",
    "Požadavky z {ip} jsou blokovány.",
    "Mobil: {phone}",
    "Moje heslo je {pw}.",
]
_UK = [
    "Добрий день, мій email {email}.",
    "Зателефонуйте мені за номером {phone}.",
    "пароль: {pw}",
    "З моєї картки {card} списали двічі.",
    "З повагою,\n{name}\nтел. {phone}",
    "Запити з {ip} блокуються.",
    "Мобільний: {phone}",
    "Мій пароль {pw}.",
]
_TEMPLATES: dict[str, list[str]] = {
    "en": _EN, "de": _DE, "fr": _FR, "es": _ES, "pt": _PT, "it": _IT, "nl": _NL, "ja": _JA,
    "zh": _ZH, "ru": _RU, "ko": _KO, "pl": _PL, "hi": _HI, "sv": _SV, "da": _DA, "fi": _FI,
    "tr": _TR, "cs": _CS, "uk": _UK,
}  # fmt: skip

# Templates by round: round 0 (tuning) is the lists above but every fourth template; round 1
# adds those; rounds 2 to 5 add the lists below, each written before the detectors saw it.
_TEMPLATES_2: dict[str, list[str]] = {
    "en": [
        "Can someone call me? {phone} (mobile, after 6pm please).",
        "My email changed from {email} to {email}, please update the account.",
        "Payment failed with card {card}, the bank says it's on your side.",
        "We whitelisted {ip} yesterday but traffic from {ip} is still rejected.",
        "Here is the env dump: OPENAI_API_KEY={key} and {pwassign}",
        "Forgot to mention, the admin login is {email} with password {pw}",
        "Please don't call {phone} during work hours; email {email} instead.",
        "The user {name} <{email}> can't reset their password.",
        "My husband's number is {phone} if I'm unreachable.",
        "Fraud alert on {card}, I did not make the {amount} purchase on {date}.",
        "Traceback mentions host {ip} port 5432 refused connection",
        "token={key}",
        "I typed my password ({pw}) into the chat by accident, sorry!",
        "Reach our office at {phone} or the front desk.",
        "Contact person: {name}\nPhone: {phone}\nE-mail: {email}",
    ],
    "de": [
        "Meine neue Handynummer lautet {phone}.",
        "Die Zugangsdaten: Benutzer {email}, Passwort {pw}",
        "Bitte buchen Sie den Betrag von der Karte {card} ab.",
        "Zugriff von {ip} wurde gesperrt, bitte freischalten.",
        "Rückruf bitte an {phone}, ab 14 Uhr.",
    ],
    "fr": [
        "Mon nouveau numéro : {phone}.",
        "Mes identifiants : {email}, mot de passe {pw}",
        "Appelez-moi au {phone} ou écrivez à {email}.",
        "Le paiement avec la carte {card} a échoué.",
        "L'adresse IP {ip} est bloquée par votre pare-feu.",
    ],
    "es": [
        "Mi nuevo número es el {phone}.",
        "Usuario: {email}, contraseña {pw}",
        "Cobraron {amount} a mi tarjeta {card} sin autorización.",
        "No puedo acceder desde la IP {ip}.",
        "Escríbanme a {email} o llámenme al {phone}.",
    ],
    "el": [
        "Καλησπέρα, το email μου είναι {email}.",
        "Τηλέφωνο επικοινωνίας: {phone}",
        "Καλέστε με στο {phone}.",
        "Η κάρτα μου {card} χρεώθηκε δύο φορές.",
        "κωδικός: {pw}",
        "Οι αιτήσεις από {ip} μπλοκάρονται.",
    ],
    "ro": [
        "Bună ziua, adresa mea de e-mail este {email}.",
        "Mă puteți suna la {phone}.",
        "Telefon: {phone}",
        "Cardul meu {card} a fost debitat de două ori.",
        "parolă: {pw}",
        "Cererile de la {ip} sunt blocate.",
    ],
    "hu": [
        "Jó napot, az e-mail címem {email}.",
        "Hívjon a {phone} számon.",
        "Telefonszám: {phone}",
        "A kártyámat ({card}) kétszer terhelték meg.",
        "jelszó: {pw}",
        "A {ip} címről érkező kérések blokkolva vannak.",
    ],
    "id": [
        "Halo, email saya {email}.",
        "Silakan hubungi saya di {phone}.",
        "No. HP: {phone}",
        "Kartu saya {card} ditagih dua kali.",
        "kata sandi: {pw}",
        "Permintaan dari {ip} diblokir.",
    ],
    "vi": [
        "Chào bạn, email của tôi là {email}.",
        "Số điện thoại: {phone}",
        "Vui lòng gọi cho tôi theo số {phone}.",
        "Thẻ {card} của tôi bị trừ tiền hai lần.",
        "mật khẩu: {pw}",
        "Các yêu cầu từ {ip} bị chặn.",
    ],
    "sk": [
        "Dobrý deň, môj e-mail je {email}.",
        "Zavolajte mi na {phone}.",
        "heslo: {pw}",
        "Moja karta {card} bola zaťažená dvakrát.",
        "Požiadavky z {ip} sú blokované.",
        "Mobil: {phone}",
    ],
}
_NEGATIVES_2 = [
    "Your parcel {tracking} will arrive on {date}.",
    "Ticket {ticket} was merged into {ticket}.",
    "Uploaded build {version4} to the store; ISBN {isbn_bare} is the print edition.",
    "Meter reading {count} kWh, contract {custid}.",
    "Booking reference {order}, seat 14C, flight on {date}.",
    "The password must be at least 12 characters long.",
    "Please call us back regarding order {order}.",
    "Sent {amount} to account {custid} on {date}.",
]

_TEMPLATES_3: dict[str, list[str]] = {
    "en": [
        "Hello! Quick one: my login {email} stopped working after I changed the password to {pw}.",
        "For the callback use {phone}; if nobody answers try {phone}.",
        "The invoice shows card {card} but my card is {card}.",
        "Our monitoring flagged {ip}, {ip} and {ip} as abusive.",
        "My colleague {name} ({phone}) will handle the migration.",
        "ssh deploy@{ip} -p 2222 hangs at the handshake",
        "export API_TOKEN={key}",
        "Sorry for the long mail. Best, {first} | {email} | {phone}",
        "Pwd for the test tenant: {pw} (please rotate it afterwards)",
        "Mobile number {phone} is verified but SMS codes never arrive.",
    ],
    "de": [
        "Sie erreichen mich am besten mobil: {phone}",
        "Meine E-Mail hat sich geändert, neu: {email}",
        "Das neue Passwort lautet {pw}",
        "Karte {card} gültig bis {expiry}",
    ],
    "fr": [
        "Joignable au {phone} en semaine.",
        "Ma nouvelle adresse : {email}",
        "Le mot de passe temporaire est {pw}",
        "Serveur {ip} injoignable depuis ce matin.",
    ],
    "es": [
        "Tel. de contacto {phone}, horario de oficina.",
        "Mi correo nuevo: {email}",
        "La contraseña temporal es {pw}",
        "El cargo en la tarjeta {card} está duplicado.",
    ],
    "pt": [
        "Fone para contato: {phone}",
        "E-mail atualizado: {email}",
        "A senha provisória é {pw}",
    ],
    "it": [
        "Numero di telefono: {phone}",
        "Indirizzo email aggiornato: {email}",
        "La password provvisoria è {pw}",
    ],
    "et": [
        "Tere, minu e-post on {email}.",
        "Helistage mulle numbril {phone}.",
        "parool: {pw}",
        "Minu kaardilt {card} võeti raha kaks korda.",
        "Päringud aadressilt {ip} blokeeritakse.",
    ],
    "lv": [
        "Labdien, mans e-pasts ir {email}.",
        "Zvaniet man pa tālruni {phone}.",
        "parole: {pw}",
        "No manas kartes {card} nauda noņemta divreiz.",
        "Pieprasījumi no {ip} tiek bloķēti.",
    ],
    "sl": [
        "Pozdravljeni, moj e-naslov je {email}.",
        "Pokličite me na {phone}.",
        "geslo: {pw}",
        "Moja kartica {card} je bila bremenjena dvakrat.",
        "Zahteve z {ip} so blokirane.",
    ],
    "is": [
        "Halló, netfangið mitt er {email}.",
        "Hringdu í mig í síma {phone}.",
        "lykilorð: {pw}",
        "Kortið mitt {card} var rukkað tvisvar.",
    ],
    "az": [
        "Salam, e-poçtum {email}.",
        "Mənə {phone} nömrəsinə zəng edin.",
        "şifrə: {pw}",
        "Kartımdan {card} iki dəfə pul çıxılıb.",
    ],
}
_NEGATIVES_3 = [
    "Refund {ref} was issued on {date} for {amount}.",
    "Firmware build {build} fixes the crash; see commit {sha}.",
    "We received {count} tickets about order {order} this week.",
    "Parcel {tracking} is held at customs, reference {custid}.",
    "ISBN-13 {isbn_bare}, printed {date}.",
    "Please reset my password, the link in ticket #{ticket} expired.",
]

# Round 4, written for the fourth held-out split (seed 5) before the detectors saw it: new
# phrasings, and the languages of some of its locales.
_TEMPLATES_4: dict[str, list[str]] = {
    "en": [
        "Hi team, this is {name} from {company}. Direct line {phone}, backup email {email}.",
        "Can you unblock {ip}? It's our office NAT.",
        "Double charged on my Visa ending {last4}, the full number is {card}.",
        "Temp creds -> user: {email} pass: {pw}",
        "Is our staging DB exposed? The URL is {dburl}",
        "Call/text {phone} anytime before 9.",
        "The webhook from {ip} carries the header '{auth}'.",
        "Please remove my number ({phone}) from your marketing list.",
        "Log excerpt: user={email} ip={ip} status=403",
        "My landline changed to {phone} last week, please update it.",
        "ping me at {email} or on WhatsApp {phone}",
        "new password for the shared inbox: {pw}",
    ],
    "de": [
        "Meine Festnetznummer ist {phone}.",
        "Zugang: {email} / Kennwort: {pw}",
        "Bitte die Zahlung über die Karte {card} stornieren.",
    ],
    "fr": [
        "Voici mon numéro de portable : {phone}",
        "Le mot de passe du compte de test est {pw}",
        "Adresse IP concernée : {ip}",
    ],
    "es": [
        "Mi número de WhatsApp es {phone}",
        "La contraseña del wifi es {pw}",
        "IP bloqueada: {ip}",
    ],
    "ar": [
        "مرحبا، بريدي الإلكتروني هو {email}",
        "رقم هاتفي {phone}",
        "كلمة المرور: {pw}",
        "تم خصم المبلغ مرتين من بطاقتي {card}",
        "الطلبات من {ip} محظورة",
    ],
    "sr": [
        "Pozovite me na {phone}.",
        "lozinka: {pw}",
        "Moja kartica {card} je zadužena dva puta.",
        "Zahtevi sa {ip} su blokirani.",
    ],
    "uz": [
        "Salom, elektron pochtam {email}.",
        "Menga {phone} raqamiga qo'ng'iroq qiling.",
        "parol: {pw}",
        "Kartamdan {card} ikki marta pul yechildi.",
    ],
    "ga": [
        "Dia duit, is é mo sheoladh ríomhphoist {email}.",
        "Glaoigh orm ar {phone}.",
        "pasfhocal: {pw}",
    ],
    "lb": [
        "Moien, meng E-Mail ass {email}.",
        "Rufft mech w.e.g. op {phone} un.",
        "Passwuert: {pw}",
    ],
    "ne": [
        "मेरो इमेल {email} हो।",
        "मलाई {phone} मा फोन गर्नुहोस्।",
        "पासवर्ड: {pw}",
    ],
}
_FILIPINO = [
    "Magandang araw, ang email ko ay {email}.",
    "Tawagan mo ako sa {phone}.",
    "password: {pw}",
    "Nasingil nang dalawang beses ang card ko na {card}.",
    "Naka-block ang mga request mula sa {ip}.",
]
# Round 5, written for the fifth held-out split before the detectors saw it.
_TEMPLATES_5: dict[str, list[str]] = {
    "en": [
        "Quick update: I moved, my new mobile is {phone} and the old one ({phone}) is gone.",
        "Forwarding from {email} on behalf of {name}.",
        "Our firewall logs show {ip} hitting /wp-login.php every few seconds.",
        "Card {card} expired, please use the new one ending in {last4}.",
        "The staging login is admin, password {pw}",
        "Reply to {email}, CC {email}.",
        "The VPN endpoint {ip} refuses my certificate.",
        "Hotline {phone} keeps dropping the call.",
        "Set DATABASE_PASSWORD={pw} in the compose file and restarted.",
        "SMS to {phone} never arrives even though the number is correct.",
        "The Authorization header was '{auth}' when it failed.",
        "I entered {card} at checkout and got error {errcode}.",
    ],
    "es": [
        "Mi teléfono fijo es el {phone}.",
        "Contraseña nueva: {pw}",
        "Escribidme a {email}, por favor.",
    ],
    "ar": [
        "يرجى الاتصال بي على {phone}",
        "بريدي {email}",
        "كلمة السر الجديدة هي {pw}",
        "عنوان IP الخاص بي {ip}",
    ],
    "fil": _FILIPINO,
    "tl": _FILIPINO,
    "ig": [
        "Ndewo, email m bụ {email}.",
        "Kpọọ m na {phone}.",
        "paswọọdụ: {pw}",
    ],
    "or": [
        "ମୋର ଇମେଲ {email}",
        "ମୋତେ {phone} ରେ ଫୋନ କରନ୍ତୁ।",
        "ପାସୱାର୍ଡ: {pw}",
    ],
}
_NEGATIVES_5 = [
    "Your one-time code expires in {count} seconds.",
    "Ticket #{ticket} reopened on {date} at {time}.",
    "Tracking {tracking}: out for delivery, {count} stops before you.",
    "Model {sku}, firmware {version}, serial {serial}.",
    "Paid {amount} by bank transfer, reference {ref}.",
    "Password reset requested from the settings page on {date}.",
    "Line {room} of the log shows error {errcode}.",
    "Call volume on {date} was {count}.",
]
_NEGATIVES_4 = [
    "Your verification code is {ticket}.",
    "Flight {sku} departs on {date} at {time}, gate {room}.",
    "Patch {version4} rolled out to {count} devices; see commit {sha}.",
    "Order total {amount}, customer number {custid}.",
    "Password changed successfully on {date}.",
    "Your account number ends with {last4}.",
    "GPS fix at {lat}, {lon}, build {build}.",
    "Error {errcode} again, serial {serial}, IMEI {imei}.",
]

# Look-alikes: no field here is PII.
_NEGATIVES = [
    "Order {order} still hasn't shipped, it's been two weeks.",
    "After updating to {version4} the app crashes on start.",
    "The book with ISBN {isbn} arrived damaged.",
    "I ordered {isbn_bare} but received a different edition.",
    "event at {ts_ms} ms, retried at {ts} s",
    "request id {uuid}, please check the logs",
    "commit {sha} broke the export; sha256 {sha256}",
    "The total was {amount} but I was charged {amount}.",
    "Delivery was planned for {date} at {time}.",
    "Tracking number {tracking}, still in transit.",
    "Can you change the button colour to {colour}?",
    "Customer ID {custid}, ticket #{ticket}.",
    "IMEI {imei} is blocked on the network.",
    "IBAN {iban} for the refund, please.",
    "Windows build {build}, Chrome {chrome}.",
    "Location {lat}, {lon} is outside the delivery zone.",
    "My phone is broken and the password reset page keeps failing.",
    "The API key field is empty and the token expired yesterday.",
    "Version {version} is installed on {count} machines.",
    "Serial number {serial} on the back of the device.",
    "Invoice {invoice} from {date} shows {amount}.",
    "Room {room}, floor {floor}; call volume was {count} last week.",
    "Error code {errcode} when paying for order #{order}.",
    "Card ending in {last4}, expiry {expiry}.",
    "reach me on [PHONE], order {order} is late",
    "Reference {ref} — the app {version4} shows a blank page.",
    "Postcode {zip}, parcel {tracking}.",
    "sku {sku}: {count} units at {amount} each",
    "Firmware {version4} ({date}); hash {md5}",
    "Please quote case number {case} in your reply.",
    "Bestellung {order} vom {date}, Rechnung {invoice}.",
    "Commande n° {order}, facture {invoice}, {amount}.",
    "注文番号：{order}、バージョン{version4}です。",
    "订单号：{order}，金额{amount}。",
    "Заказ № {order} от {date}, сумма {amount}.",
    "Pedido {order} de {date}: {amount}.",
]

# The failures that motivated the rework, written out, and more like them. Each is a text and its
# labelled (kind, value) items, found in the text in order.
HARD_CASES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("call me at (323)528-5554x736 tomorrow", (("PHONE", "(323)528-5554x736"),)),
    ("Tel: 001-961-565-1728x62335", (("PHONE", "001-961-565-1728x62335"),)),
    ("office 206.269.0743x9150, mobile +1-537-640-6812x41586", (
        ("PHONE", "206.269.0743x9150"), ("PHONE", "+1-537-640-6812x41586"))),
    ("text me at 7047074135231 please", (("PHONE", "7047074135231"),)),
    ("Meu celular é (83) 7352-3246.", (("PHONE", "(83) 7352-3246"),)),
    ("携帯：80-8658-1943", (("PHONE", "80-8658-1943"),)),
    ("zadzwoń pod numer 825 776 343", (("PHONE", "825 776 343"),)),
    ("chiamami al 0556662419", (("PHONE", "0556662419"),)),
    ("reach me on +44 20 7946 0958, order 40018822931 is late", (("PHONE", "+44 20 7946 0958"),)),
    ("phone: +1 415 555 0132, invoice 40018822931", (("PHONE", "+1 415 555 0132"),)),
    ("after updating to 12.17.1.21 the sync stopped", ()),
    ("ISBN 9780306406157 is out of stock", ()),
    ("the book 9781861972712 never arrived", ()),
    ("created_at 1700000000006 and 1709648551123", ()),
    ("PASSWORD=i)Mav8eoQU8V9l&8(sR4H", (("SECRET", "i)Mav8eoQU8V9l&8(sR4H"),)),
    ("senha: Xk3(m)9&pq", (("SECRET", "Xk3(m)9&pq"),)),
    ("Passwort: a(B)c&d1234", (("SECRET", "a(B)c&d1234"),)),
    ("contraseña: Zq7&(kk)Lp", (("SECRET", "Zq7&(kk)Lp"),)),
    ("mot de passe : r&D(2)xx9", (("SECRET", "r&D(2)xx9"),)),
    ("wachtwoord: W8&w(o)rd1", (("SECRET", "W8&w(o)rd1"),)),
    ("пароль: Qw(e)rty&123", (("SECRET", "Qw(e)rty&123"),)),
    ("パスワード：Pa(ss)&w0rd", (("SECRET", "Pa(ss)&w0rd"),)),
    ("密码：Mi&ma(123)", (("SECRET", "Mi&ma(123)"),)),
    ("비밀번호: Bi&mil(99)", (("SECRET", "Bi&mil(99)"),)),
    ("(password: hunter2x99)", (("SECRET", "hunter2x99"),)),
    ("メール：トモヤ@hotmail.com", (("EMAIL", "トモヤ@hotmail.com"),)),
    ("email иван.петров@mail.ru please", (("EMAIL", "иван.петров@mail.ru"),)),
    ("write to 王芳@example.cn", (("EMAIL", "王芳@example.cn"),)),
    ("지민@naver.com 으로 보내주세요", (("EMAIL", "지민@naver.com"),)),
    ("ईमेल: मधु@gmail.com", (("EMAIL", "मधु@gmail.com"),)),
)  # fmt: skip


def _held_out_template(index: int) -> bool:
    """Every fourth template of the first lists is left out of the tuning split."""
    return index % 4 == 3


# ---------------------------------------------------------------------------------------------
# Field generators. Each returns (text, kind) pieces; kind None is unlabelled.

_Piece = tuple[str, str | None]


@dataclass
class _Ctx:
    """What the field generators draw from: one locale's Faker, its region and a seeded rng."""

    fake: Faker
    rng: random.Random
    locale: str
    region: str
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def language(self) -> str:
        return self.locale.split("_", 1)[0]


_NATIVE_NAMES = {"ja", "zh", "ru", "ko", "hi", "uk", "de", "fr", "es", "pl", "cs", "tr", "sv"}
_ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, n: int, alphabet: str = _ALNUM) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _email(c: _Ctx) -> list[_Piece]:
    f, r = c.fake, c.rng.random()
    if r < 0.4:
        value = c.rng.choice([f.email, f.free_email, f.company_email])()
    elif r < 0.55:
        value = f"{f.user_name()}+{c.rng.choice(['support', 'eu', 'billing', 'test1'])}@{f.free_email_domain()}"
    elif r < 0.65:
        value = f"{f.first_name()}.{f.last_name()}@{f.domain_word()}.{c.rng.choice(['com', 'CO.UK', 'de', 'com.br', 'io'])}"
        value = re.sub(r"[ '()]", "", value)  # "भैरवलाल (क्षेत्री)" is a name, not a local part
    elif r < 0.82 and c.language in _NATIVE_NAMES:
        name = f.first_kana_name() if c.language == "ja" else f.first_name()
        value = f"{name.replace(' ', '')}@{f.free_email_domain()}"
    elif r < 0.92:
        value = f"{f.user_name()}{c.rng.randint(1, 99)}@mail.{f.domain_name()}"
    elif r < 0.97:
        value = f"{f.user_name()}@{f.domain_name()}".upper()
    else:
        user, domain = f.user_name(), f.domain_word()
        value = c.rng.choice([f"{user}[at]{domain}[dot]com", f"{user} (at) {domain} (dot) com"])
    return [(value, "EMAIL")]


def _phone(c: _Ctx) -> list[_Piece]:
    r = c.rng.random()
    if r < 0.5:
        value = _faker_phone(c)
    elif r < 0.8:
        value = _library_phone(c, c.rng.choice(["national", "international", "e164"]))
    elif r < 0.92:
        # Written by hand: one separator throughout, or none (brackets kept as they are).
        value = _library_phone(c, "national")
        sep = c.rng.choice(["-", ".", " ", ""])
        if "(" in value:
            value = value.replace("-", " ").replace(" ", sep if sep != "." else " ")
        else:
            value = re.sub(r"[ \-]", sep, value)
    else:
        value = _library_phone(c, c.rng.choice(["national", "international"]))
        ext = c.rng.choice(["x", " x", " ext. ", " ext ", "#"]) + str(c.rng.randint(1, 99999))
        value += ext
    return [(value, "PHONE")]


def _faker_phone(c: _Ctx) -> str:
    for _ in range(10 if hasattr(c.fake, "phone_number") else 0):  # en_PH has no phone format
        value = c.fake.phone_number()
        try:
            number = phonenumbers.parse(value, c.region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return value
    return _library_phone(c, "national")


def _library_phone(c: _Ctx, form: str) -> str:
    kind = c.rng.choice(
        [phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]
    )
    example = phonenumbers.example_number_for_type(c.region, kind)
    assert example is not None, c.region
    national = str(example.national_number)
    for _ in range(50):
        keep = max(2, len(national) - 5)
        candidate = national[:keep] + "".join(c.rng.choice(string.digits) for _ in national[keep:])
        number = phonenumbers.parse(f"+{example.country_code}{candidate}")
        if phonenumbers.is_valid_number(number):
            break
    else:
        number = example
    fmt = {
        "national": phonenumbers.PhoneNumberFormat.NATIONAL,
        "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        "e164": phonenumbers.PhoneNumberFormat.E164,
    }[form]
    return phonenumbers.format_number(number, fmt)


# Maestro (12 to 19 digits, 12 in Faker) and 15-digit JCB (prefixes retired in the 1990s) are left
# out; locales with their own cards (ru_RU's Mir and UnionPay) keep them.
_CARD_BRANDS = ("visa16", "visa13", "visa19", "visa", "mastercard", "amex", "discover", "diners", "jcb16", "mir", "unionpay")  # fmt: skip
_CARD_WEIGHTS = {"visa16": 3, "visa": 3, "mastercard": 3}
_CARD_GROUPS = {13: (4, 4, 5), 14: (4, 6, 4), 15: (4, 6, 5), 16: (4, 4, 4, 4), 19: (4, 4, 4, 4, 3)}


def _card_number(c: _Ctx) -> str:
    # A locale with only its own banks' cards (fa_IR's Shetab cards) writes those.
    known = _card_types(c.fake)
    brands = [b for b in _CARD_BRANDS if b in known] or sorted(known - {"maestro"})
    brand = c.rng.choices(brands, [_CARD_WEIGHTS.get(b, 1) for b in brands])[0]
    digits = c.fake.credit_card_number(brand)
    sep = c.rng.choice(["", " ", " ", "-"])
    if not sep or len(digits) == 13:
        return digits
    groups, pos = [], 0
    for size in _CARD_GROUPS[len(digits)]:
        groups.append(digits[pos : pos + size])
        pos += size
    return sep.join(groups)


def _card_types(fake: Faker) -> set[str]:
    """The card types the locale's Faker knows."""
    provider = next(p for p in fake.providers if "credit_card" in type(p).__module__)
    return set(provider.credit_card_types)


def _card(c: _Ctx) -> list[_Piece]:
    return [(_card_number(c), "CARD")]


def _ip(c: _Ctx) -> list[_Piece]:
    f, r = c.fake, c.rng.random()
    if r < 0.35:
        value = f.ipv4_public()
    elif r < 0.6:
        value = f.ipv4_private()
    elif r < 0.75:
        value = f.ipv6()
    elif r < 0.9:
        packed = bytearray(ipaddress.IPv6Address(f.ipv6()).packed)
        for i in range(c.rng.randint(4, 10), c.rng.randint(11, 14)):
            packed[i] = 0
        if c.rng.random() < 0.3:
            packed[:8] = bytes.fromhex("20010db800000000")
        value = str(ipaddress.IPv6Address(bytes(packed)))
    else:
        value = c.rng.choice(
            [
                f"fe80::{_rand(c.rng, 3, '0123456789abcdef')}:{_rand(c.rng, 4, '0123456789abcdef')}",
                f"::ffff:{f.ipv4()}",
            ]
        )
    pieces: list[_Piece] = [(value, "IP")]
    if c.rng.random() < 0.15:
        if ":" in value:
            pieces = [("[", None), (value, "IP"), (f"]:{c.rng.randint(80, 9999)}", None)]
        else:
            pieces.append((f":{c.rng.choice([80, 443, 8080, 5432, 22])}", None))
    return pieces


def _key_value(c: _Ctx) -> str:
    rng = c.rng
    shapes: list[Callable[[], str]] = [
        lambda: "sk-proj-" + _rand(rng, 40, _ALNUM + "_-"),
        lambda: "sk-" + _rand(rng, 48),
        lambda: "sk-ant-api03-" + _rand(rng, 60, _ALNUM + "_-"),
        lambda: "AKIA" + _rand(rng, 16, string.ascii_uppercase + string.digits),
        lambda: "ghp_" + _rand(rng, 36),
        lambda: "github_pat_" + _rand(rng, 22) + "_" + _rand(rng, 59),
        lambda: (
            "xoxb-"
            + _rand(rng, 12, string.digits)
            + "-"
            + _rand(rng, 12, string.digits)
            + "-"
            + _rand(rng, 24)
        ),
        lambda: "glpat-" + _rand(rng, 20, _ALNUM + "_-"),
        lambda: "hf_" + _rand(rng, 34),
        lambda: "AIza" + _rand(rng, 35, _ALNUM + "_-"),
        lambda: "sk_live_" + _rand(rng, 24),
        lambda: "whsec_" + _rand(rng, 32),
        lambda: "npm_" + _rand(rng, 36),
        lambda: _jwt(rng),
    ]
    return rng.choice(shapes)()


def _jwt(rng: random.Random) -> str:
    def part(raw: str) -> str:
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    header = part('{"alg":"HS256","typ":"JWT"}')
    payload = part(f'{{"sub":"{rng.randint(1, 10**6)}","iat":{rng.randint(10**9, 2 * 10**9)}}}')
    return f"{header}.{payload}.{_rand(rng, 43, _ALNUM + '_-')}"


def _key(c: _Ctx) -> list[_Piece]:
    return [(_key_value(c), "SECRET")]


def _password(c: _Ctx) -> str:
    r = c.rng.random()
    if r < 0.7:
        return c.fake.password(
            length=c.rng.randint(8, 20), special_chars=c.rng.random() < 0.75, upper_case=True
        )
    if r < 0.85:
        word = c.rng.choice(["Summer", "Winter", "Sonne", "Chocolat", "Dragon", "Monkey", "Bella"])
        return f"{word}{c.rng.randint(1970, 2026)}{c.rng.choice(['', '!', '#', '?', '*'])}"
    return _rand(c.rng, c.rng.randint(10, 24), _ALNUM + "!#$%&()*+-_=@^~")


def _pw(c: _Ctx) -> list[_Piece]:
    return [(_password(c), "SECRET")]


_PASSWORD_KEYS = ("password", "PASSWORD", "DB_PASSWORD", "pwd", "passwd", "Password", "MYSQL_ROOT_PASSWORD", "admin_password")  # fmt: skip
_TOKEN_KEYS = ("api_key", "API_KEY", "client_secret", "secret", "AUTH_TOKEN", "access_token", "SECRET_KEY", "apiKey")  # fmt: skip


def _pwassign(c: _Ctx) -> list[_Piece]:
    rng = c.rng
    if rng.random() < 0.6:
        key, value = rng.choice(_PASSWORD_KEYS), _password(c)
    else:
        key = rng.choice(_TOKEN_KEYS)
        value = rng.choice(
            [
                _rand(rng, 32, "0123456789abcdef"),
                _rand(rng, 40, _ALNUM + "+/"),
                _rand(rng, 24),
            ]
        )
    sep, quote = rng.choice(
        [("=", ""), (": ", ""), (" = ", ""), ("=", '"'), (": ", "'"), (": ", '"')]
    )
    return [(f"{key}{sep}{quote}", None), (value, "SECRET"), (quote, None)]


def _auth(c: _Ctx) -> list[_Piece]:
    if c.rng.random() < 0.7:
        return [
            ("Authorization: Bearer ", None),
            (_rand(c.rng, c.rng.randint(24, 48), _ALNUM + "-._"), "SECRET"),
        ]
    raw = f"{c.fake.user_name()}:{_password(c)}".encode()
    return [("Authorization: Basic ", None), (base64.b64encode(raw).decode(), "SECRET")]


def _dburl(c: _Ctx) -> list[_Piece]:
    scheme = c.rng.choice(["postgres", "mysql", "mongodb", "redis", "amqp"])
    user = c.fake.user_name()
    password = _rand(c.rng, c.rng.randint(8, 20), _ALNUM + "!$&()*+-_~")
    host = c.rng.choice(["db.internal", "10.0.3.17", "prod-cluster.example.net"])
    host_piece: list[_Piece] = [(host, "IP" if host[0].isdigit() else None)]
    return [
        (f"{scheme}://{user}:", None),
        (password, "SECRET"),
        ("@", None),
        *host_piece,
        (f":{c.rng.randint(1000, 9999)}/app", None),
    ]


# Fillers, several of them look-alikes.


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + _rand(rng, n - 1, string.digits)


def _order(c: _Ctx) -> str:
    rng = c.rng
    return rng.choice(
        [
            _digits(rng, rng.randint(6, 15)),
            f"#{_digits(rng, rng.randint(5, 12))}",
            f"{rng.choice(['A', 'SO', 'ORD-', 'WEB-', 'R'])}{_digits(rng, rng.randint(6, 10))}",
            f"{rng.randint(100, 999)}-{_digits(rng, 7)}-{_digits(rng, 7)}",
        ]
    )


def _version4(c: _Ctx) -> str:
    r = c.rng
    return f"{r.randint(1, 30)}.{r.randint(0, 40)}.{r.randint(0, 20)}.{r.randint(0, 300)}"


def _version(c: _Ctx) -> str:
    r = c.rng
    return r.choice(
        [
            f"{r.randint(1, 20)}.{r.randint(0, 20)}.{r.randint(0, 9)}",
            _version4(c),
            f"v{r.randint(1, 5)}.{r.randint(0, 30)}",
        ]
    )


def _isbn(c: _Ctx) -> str:
    return c.fake.isbn13() if c.rng.random() < 0.6 else c.fake.isbn10()


def _isbn_bare(c: _Ctx) -> str:
    body = c.rng.choice(["978", "979"]) + _rand(c.rng, 9, string.digits)
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def _ts_ms(c: _Ctx) -> str:
    return str(c.rng.randint(1_500_000_000_000, 1_800_000_000_000))


def _imei(c: _Ctx) -> str:
    body = _digits(c.rng, 14)
    return body + _luhn_digit(body)


def _tracking(c: _Ctx) -> str:
    rng = c.rng
    return rng.choice(
        [
            "1Z" + _rand(rng, 16, string.ascii_uppercase + string.digits),
            " ".join(_rand(rng, 4, string.digits) for _ in range(5))
            + " "
            + _rand(rng, 2, string.digits),
            _digits(rng, 12),
            "JD" + _rand(rng, 18, string.digits),
            f"{_rand(rng, 4, string.digits)} {_rand(rng, 4, string.digits)} {_rand(rng, 4, string.digits)}",
            "LX" + _rand(rng, 9, string.digits) + "CN",
        ]
    )


def _amount(c: _Ctx) -> str:
    rng = c.rng
    units, cents = rng.randint(1, 99999), rng.randint(0, 99)
    return rng.choice(
        [
            f"${units:,}.{cents:02d}",
            f"€ {units:,}.{cents:02d}".replace(",", "X").replace(".", ",").replace("X", "."),
            f"{units:,},{cents:02d} €".replace(",", " ", units >= 1000),
            f"R$ {units:,}.{cents:02d}".replace(",", "X").replace(".", ",").replace("X", "."),
            f"¥{units * 100:,}",
            f"£{units}.{cents:02d}",
            f"₹ {units:,}",
            f"{units * 10:,} ₽".replace(",", " "),
            f"{units} zł",
        ]
    )


# Fixed bounds, not Faker's default "until now": the corpus is the same whatever the day.
_FIRST_DAY, _LAST_DAY = dt.date(2023, 12, 1), dt.date(2027, 12, 1)


def _date(c: _Ctx) -> str:
    d = c.fake.date_between(_FIRST_DAY, _LAST_DAY)
    return c.rng.choice(
        [
            d.isoformat(),
            d.strftime("%d.%m.%Y"),
            d.strftime("%m/%d/%Y"),
            d.strftime("%d/%m/%Y"),
            d.strftime("%Y年%m月%d日"),
            d.strftime("%d %b %Y"),
        ]
    )


_FILLERS: dict[str, Callable[[_Ctx], str]] = {
    "name": lambda c: c.fake.name(),
    "first": lambda c: c.fake.first_name(),
    "company": lambda c: c.fake.company(),
    "order": _order,
    "invoice": lambda c: (
        c.rng.choice(["INV-", "RE-", "F", ""]) + f"{c.rng.randint(2019, 2026)}-{_digits(c.rng, 5)}"
    ),
    "version": _version,
    "version4": _version4,
    "isbn": _isbn,
    "isbn_bare": _isbn_bare,
    "ts": lambda c: str(c.rng.randint(1_500_000_000, 1_800_000_000)),
    "ts_ms": _ts_ms,
    "uuid": lambda c: c.fake.uuid4(),
    "sha": lambda c: c.fake.sha1()[: c.rng.choice([7, 12, 40])],
    "sha256": lambda c: c.fake.sha256(),
    "md5": lambda c: c.fake.md5(),
    "amount": _amount,
    "date": _date,
    "time": lambda c: c.fake.time(end_datetime=_LAST_DAY),
    "tracking": _tracking,
    "colour": lambda c: c.fake.hex_color().upper() if c.rng.random() < 0.5 else c.fake.hex_color(),
    "custid": lambda c: c.rng.choice(["", "C-", "CUST"]) + _digits(c.rng, c.rng.randint(6, 10)),
    "ticket": lambda c: _digits(c.rng, c.rng.randint(4, 8)),
    "case": lambda c: "0" * c.rng.randint(1, 3) + _digits(c.rng, c.rng.randint(5, 9)),
    "imei": _imei,
    "iban": lambda c: c.fake.iban(),
    "build": lambda c: f"10.0.{c.rng.randint(10000, 22631)}.{c.rng.randint(1, 4000)}",
    "chrome": lambda c: (
        f"{c.rng.randint(90, 130)}.0.{c.rng.randint(4000, 6999)}.{c.rng.randint(1, 250)}"
    ),
    "lat": lambda c: f"{c.fake.latitude():.4f}",
    "lon": lambda c: f"{c.fake.longitude():.4f}",
    "count": lambda c: f"{c.rng.randint(2, 99999):,}",
    "serial": lambda c: (
        c.rng.choice(["SN", "S/N ", ""])
        + "-".join(_rand(c.rng, 4, string.digits) for _ in range(3))
    ),
    "room": lambda c: str(c.rng.randint(100, 2500)),
    "floor": lambda c: str(c.rng.randint(1, 40)),
    "errcode": lambda c: (
        c.rng.choice(["0x8007", "0x8004", "E"]) + _rand(c.rng, 4, "0123456789ABCDEF")
    ),
    "last4": lambda c: _rand(c.rng, 4, string.digits),
    "expiry": lambda c: f"{c.rng.randint(1, 12):02d}/{c.rng.randint(25, 32)}",
    "ref": lambda c: "-".join(_rand(c.rng, 4, string.digits) for _ in range(4)),
    "zip": lambda c: c.fake.postcode(),
    "sku": lambda c: f"{_rand(c.rng, 3, string.ascii_uppercase)}-{_digits(c.rng, 5)}",
}
_PII: dict[str, Callable[[_Ctx], list[_Piece]]] = {
    "email": _email,
    "phone": _phone,
    "card": _card,
    "ip": _ip,
    "key": _key,
    "pw": _pw,
    "pwassign": _pwassign,
    "auth": _auth,
    "dburl": _dburl,
}

# Hard cases generated for both splits: fresh values in the shapes of the known failures.


def _nanp(c: _Ctx) -> tuple[str, str, str]:
    r = c.rng
    return f"{r.randint(201, 989)}", f"{r.randint(200, 999)}", f"{r.randint(0, 9999):04d}"


def _hard_phone(c: _Ctx) -> tuple[str, list[_Piece]]:
    r = c.rng
    a, b, n = _nanp(c)
    ext = str(r.randint(1, 99999))
    value, before, after = r.choice(
        [
            (f"({a}){b}-{n}x{ext}", "call me at ", " tomorrow"),
            (f"001-{a}-{b}-{n}x{ext}", "Tel: ", ""),
            (f"{a}.{b}.{n}x{ext}", "office ", ", ask for billing"),
            (f"+1-{a}-{b}-{n}x{ext}", "mobile ", "."),
            (f"{a}-{b}-{n} ext. {ext}", "Phone ", " (desk)"),
            (_digits(r, 13), "text me at ", " please"),
            (
                f"({r.randint(11, 99)}) {r.randint(2000, 9999)}-{r.randint(0, 9999):04d}",
                "Meu celular é ",
                ".",
            ),
            (
                f"{r.choice(['70', '80', '90'])}-{r.randint(1000, 9999)}-{r.randint(0, 9999):04d}",
                "携帯：",
                "",
            ),
            (
                f"{r.choice('5678')}{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}",
                "zadzwoń pod numer ",
                "",
            ),
            ("0" + _digits(r, 9), "chiamami al ", ""),
        ]
    )
    return "phone", [(before, None), (value, "PHONE"), (after, None)]


def _hard_feedback(c: _Ctx) -> tuple[str, list[_Piece]]:
    phone = _library_phone(c, "international")
    cue = c.rng.choice(["reach me on ", "phone: ", "Tel. ", "call "])
    other = c.rng.choice(["order", "invoice", "ticket", "account"])
    return "feedback", [
        (cue, None),
        (phone, "PHONE"),
        (f", {other} {_digits(c.rng, c.rng.randint(8, 15))} is late", None),
    ]


def _hard_lookalike(c: _Ctx) -> tuple[str, list[_Piece]]:
    r = c.rng
    luhn_isbn = _isbn_bare(c)
    while not _luhn_ok(luhn_isbn):
        luhn_isbn = _isbn_bare(c)
    ts = _ts_ms(c)
    while not _luhn_ok(ts):
        ts = _ts_ms(c)
    text = r.choice(
        [
            f"after updating to {_version4(c)} the sync stopped",
            f"ISBN {luhn_isbn} is out of stock",
            f"the book {luhn_isbn} never arrived",
            f"created_at {ts}",
            f"since the {_version4(c)} update nothing loads",
        ]
    )
    return "lookalike", [(text, None)]


def _luhn_ok(digits: str) -> bool:
    return _luhn_digit(digits[:-1]) == digits[-1]


_PW_WORDS = (
    "PASSWORD=", "password: ", "senha: ", "Passwort: ", "contraseña: ", "mot de passe : ", "wachtwoord: ",
    "пароль: ", "パスワード：", "密码：", "비밀번호: ", "hasło: ", "lösenord: ", "şifre: ", "heslo: ",
    "salasana: ", "पासवर्ड: ", "Kennwort=", "mdp=",
)  # fmt: skip


def _hard_password(c: _Ctx) -> tuple[str, list[_Piece]]:
    value = (
        _rand(c.rng, 4, _ALNUM)
        + c.rng.choice("()&")
        + _rand(c.rng, 6, _ALNUM + "()&")
        + _rand(c.rng, 2, _ALNUM)
    )
    word = c.rng.choice(_PW_WORDS)
    return "password", [(word, None), (value, "SECRET"), (c.rng.choice(["", " ", "\n"]), None)]


def _hard_email(c: _Ctx) -> tuple[str, list[_Piece]]:
    f = c.fake
    local = c.rng.choice(
        [f.first_name(), f.last_name(), f"{f.first_name()}.{f.last_name()}"]
    ).replace(" ", "")
    before = c.rng.choice(["メール：", "email ", "write to ", "E-Mail: ", "邮箱：", "почта: ", ""])
    return "email", [
        (before, None),
        (f"{local}@{f.free_email_domain()}", "EMAIL"),
        (c.rng.choice(["", " please", "。"]), None),
    ]


_HARD: tuple[Callable[[_Ctx], tuple[str, list[_Piece]]], ...] = (
    _hard_phone, _hard_phone, _hard_feedback, _hard_lookalike, _hard_password, _hard_email,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Building texts


def _fill(template: str, c: _Ctx) -> list[_Piece]:
    pieces: list[_Piece] = []
    for i, part in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 == 0:
            pieces.append((part, None))
        elif part in _PII:
            pieces.extend(_PII[part](c))
        else:
            pieces.append((_FILLERS[part](c), None))
    return pieces


def _join(pieces: Iterable[_Piece]) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    parts: list[str] = []
    spans: list[tuple[str, int, int]] = []
    pos = 0
    for text, kind in pieces:
        if kind is not None:
            spans.append((kind, pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
    return "".join(parts), tuple(spans)


def _region(locale: str) -> str:
    return locale.split("_")[1]


def _templates(language: str, round_: int) -> list[str]:
    chosen = _TEMPLATES.get(language, [])
    if round_ == 0:
        return [t for i, t in enumerate(chosen) if not _held_out_template(i)]
    later = (_TEMPLATES_2, _TEMPLATES_3, _TEMPLATES_4, _TEMPLATES_5)[: round_ - 1]
    return chosen + [t for templates in later for t in templates.get(language, [])]


def _negatives(round_: int) -> list[str]:
    if round_ == 0:
        return [t for i, t in enumerate(_NEGATIVES) if not _held_out_template(i)]
    later = (_NEGATIVES_2, _NEGATIVES_3, _NEGATIVES_4, _NEGATIVES_5)[: round_ - 1]
    return _NEGATIVES + [t for negatives in later for t in negatives]


def _locale_texts(locale: str, round_: int, seed: int, n: int) -> list[Labelled]:
    fake = Faker(locale)
    index = _ALL_LOCALES.index(locale)
    fake.seed_instance(seed * 1000 + index)
    rng = random.Random(seed * 1000 + index)
    c = _Ctx(fake, rng, locale, _region(locale))
    native, english = _templates(c.language, round_), _templates("en", round_)
    negatives = _negatives(round_)
    texts: list[Labelled] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.1:
            source, pieces = rng.choice(_HARD)(c)
            texts.append(Labelled(*_join(pieces), f"hard:{source}:{locale}"))
            continue
        sentences: list[list[_Piece]] = []
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
            s = rng.random()
            pool = negatives if s < 0.3 else (native if native and s < 0.75 else english)
            sentences.append(_fill(rng.choice(pool), c))
        joined: list[_Piece] = []
        for i, sentence in enumerate(sentences):
            if i:
                joined.append((rng.choice([" ", "\n", "\n\n", " "]), None))
            joined.extend(sentence)
        text, spans = _join(joined)
        kind = "negative" if not spans else "template"
        texts.append(Labelled(text, spans, f"{kind}:{locale}"))
    return texts


def _hard_cases() -> list[Labelled]:
    texts = []
    for text, items in HARD_CASES:
        spans, pos = [], 0
        for kind, value in items:
            start = text.index(value, pos)
            spans.append((kind, start, start + len(value)))
            pos = start + len(value)
        texts.append(Labelled(text, tuple(spans), "hard:fixed"))
    return texts


@cache
def corpus(split: str) -> tuple[Labelled, ...]:
    """The labelled texts of one split (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    texts = [
        t
        for seed, locales, round_, n in _ROUNDS[split]
        for locale in locales
        for t in _locale_texts(locale, round_, seed, n)
    ]
    if split == "tuning":
        texts.extend(_hard_cases())
    return tuple(texts)


# ---------------------------------------------------------------------------------------------
# Scoring


def redacted_spans(text: str) -> list[tuple[str, int, int]]:
    """The (kind, start, end) spans of `text` that `redact` replaces, in original offsets.

    `redact` repeats `find` until nothing is found; a later pass's finding is mapped back through
    the placeholders of the earlier ones (a finding that swallows a placeholder covers its span).
    """
    # Segments of the current text: (current start, current end, original start, original end).
    segments = [(0, len(text), 0, len(text), "")]
    current = text
    result: list[tuple[str, int, int]] = []
    for _ in range(16):
        findings = find(current)
        if not findings:
            break
        for f in findings:
            start, end = _to_original(segments, f.start, f.end)
            result = [r for r in result if not (start <= r[1] and r[2] <= end)]
            result.append((f.kind, start, end))
        segments, current = _apply(segments, current, findings)
    return sorted(result, key=lambda s: s[1])


def _to_original(
    segments: Sequence[tuple[int, int, int, int, str]], start: int, end: int
) -> tuple[int, int]:
    """Original offsets of the current [start, end): placeholders map to their whole span."""
    o_start = o_end = None
    for c_start, c_end, s_start, s_end, kind in segments:
        if o_start is None and start < c_end:
            o_start = s_start if kind else s_start + (start - c_start)
        if end <= c_end:
            o_end = s_end if kind else s_start + (end - c_start)
            break
    assert o_start is not None and o_end is not None
    return o_start, o_end


def _apply(
    segments: list[tuple[int, int, int, int, str]], current: str, findings: Sequence
) -> tuple[list[tuple[int, int, int, int, str]], str]:
    """The segments and text after replacing `findings` in `current`."""
    new: list[tuple[int, int, int, int, str]] = []
    parts: list[str] = []
    pos = cur = 0
    for f in findings:
        if f.start > pos:
            new.extend(_slice(segments, pos, f.start, cur))
            parts.append(current[pos : f.start])
            cur += f.start - pos
        placeholder = f"[{f.kind}]"
        o_start, o_end = _to_original(segments, f.start, f.end)
        new.append((cur, cur + len(placeholder), o_start, o_end, f.kind))
        parts.append(placeholder)
        cur += len(placeholder)
        pos = f.end
    if pos < len(current):
        new.extend(_slice(segments, pos, len(current), cur))
        parts.append(current[pos:])
    return new, "".join(parts)


def _slice(
    segments: Sequence[tuple[int, int, int, int, str]], start: int, end: int, cur: int
) -> list[tuple[int, int, int, int, str]]:
    """The pieces of `segments` between current offsets start and end, renumbered from `cur`."""
    out = []
    for c_start, c_end, s_start, s_end, kind in segments:
        lo, hi = max(start, c_start), min(end, c_end)
        if lo >= hi:
            continue
        if kind:
            out.append((cur, cur + (c_end - c_start), s_start, s_end, kind))
        else:
            out.append((cur, cur + hi - lo, s_start + lo - c_start, s_start + hi - c_start, kind))
        cur += out[-1][1] - out[-1][0]
    return out


@dataclass
class Score:
    """Per-kind counts: labelled items, how many were found, redacted spans, how many were right."""

    labelled: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    redacted: Counter[str] = field(default_factory=Counter)
    correct: Counter[str] = field(default_factory=Counter)
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, item, text)
    false_positives: list[tuple[str, str, str]] = field(default_factory=list)

    def precision(self, kind: str) -> float:
        return self.correct[kind] / self.redacted[kind] if self.redacted[kind] else 1.0

    def recall(self, kind: str) -> float:
        return self.found[kind] / self.labelled[kind] if self.labelled[kind] else 1.0

    def f1(self, kind: str) -> float:
        p, r = self.precision(kind), self.recall(kind)
        return 2 * p * r / (p + r) if p + r else 0.0

    def shortfalls(self, precision: float = PRECISION_BAR, recall: float = RECALL_BAR) -> list[str]:
        """The kinds below a bar, each as "KIND P=0.975 < 0.98"; empty when every kind meets both."""
        out = []
        for kind in KINDS:
            if self.precision(kind) < precision:
                out.append(f"{kind} P={self.precision(kind):.3f} < {precision}")
            if self.recall(kind) < recall:
                out.append(f"{kind} R={self.recall(kind):.3f} < {recall}")
        return out

    def table(self) -> str:
        rows = [
            f"{'kind':8} {'P':>6} {'R':>6} {'F1':>6} {'labelled':>9} {'found':>6} {'redacted':>9} {'wrong':>6}"
        ]
        for kind in KINDS:
            rows.append(
                f"{kind:8} {self.precision(kind):6.3f} {self.recall(kind):6.3f} {self.f1(kind):6.3f} "
                f"{self.labelled[kind]:9d} {self.found[kind]:6d} {self.redacted[kind]:9d} "
                f"{self.redacted[kind] - self.correct[kind]:6d}"
            )
        return "\n".join(rows)


def score(texts: Iterable[Labelled]) -> Score:
    """Precision and recall by span, per kind, of what `redact` replaces in `texts`.

    A labelled item is found when one redacted span of its kind covers it whole. A redacted span
    is correct when it overlaps a labelled item of its kind; otherwise it is a false positive.
    """
    s = Score()
    for t in texts:
        spans = redacted_spans(t.text)
        for kind, start, end in t.spans:
            s.labelled[kind] += 1
            if any(k == kind and a <= start and end <= b for k, a, b in spans):
                s.found[kind] += 1
            else:
                s.misses.append((kind, t.text[start:end], t.text))
        for kind, start, end in spans:
            s.redacted[kind] += 1
            if any(k == kind and a < end and start < b for k, a, b in t.spans):
                s.correct[kind] += 1
            else:
                s.false_positives.append((kind, t.text[start:end], t.text))
    return s
