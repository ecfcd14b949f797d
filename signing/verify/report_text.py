"""Plain-language sentences for verification reports, Vietnamese first (Circular 15/2025/TT-BKHCN
asks verification software to state signer, signing time, integrity and trust), English beside.

Written for a commune clerk or a citizen, not a PKI engineer: what happened, and what to do.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from zoneinfo import ZoneInfo

from signing.registry.models import DocumentStatus
from signing.verify.indications import Indication, SubIndication
from signing.verify.report import CertificateInfo, LogRecord, Text

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")

# RFC 5280 reasons, said the way an office says them
REASONS: dict[str, Text] = {
    "affiliation_changed": Text("người ký đã chuyển công tác hoặc thôi giữ chức vụ", "the officer moved post"),
    "superseded": Text("chứng thư số đã được thay bằng chứng thư mới", "the certificate was replaced"),
    "cessation_of_operation": Text("đơn vị đã sáp nhập hoặc giải thể", "the unit was merged or dissolved"),
    "key_compromise": Text("khóa bí mật bị lộ hoặc bị mất", "the private key was lost or exposed"),
    "ca_compromise": Text("tổ chức cấp chứng thư bị xâm phạm", "the issuing authority was compromised"),
    "certificate_hold": Text("chứng thư số đang bị tạm dừng", "the certificate is suspended"),
    "privilege_withdrawn": Text("người ký bị thu hồi thẩm quyền", "the officer's authority was withdrawn"),
    "unspecified": Text("không nêu lý do", "no reason given"),
}


# -- the words for every value a report shows (the codes themselves go only in the technical section) ---------
INDICATIONS: dict[str, Text] = {
    Indication.TOTAL_PASSED: Text("hợp lệ", "valid"),
    Indication.INDETERMINATE: Text("chưa thể khẳng định", "cannot be confirmed"),
    Indication.TOTAL_FAILED: Text("không hợp lệ", "not valid"),
}

SUB_INDICATIONS: dict[str, Text] = {
    SubIndication.FORMAT_FAILURE: Text("chữ ký bị hỏng hoặc sai định dạng", "the signature is damaged or malformed"),
    SubIndication.HASH_FAILURE: Text("nội dung đã bị sửa sau khi ký", "the content was altered after signing"),
    SubIndication.SIG_CRYPTO_FAILURE: Text("chữ ký sai về mặt mật mã", "the signature is cryptographically wrong"),
    SubIndication.REVOKED: Text("ký sau khi chứng thư số đã bị thu hồi",
                                "signed after the certificate was revoked"),
    SubIndication.NOT_YET_VALID: Text("chứng thư số chưa đến ngày có hiệu lực", "the certificate is not valid yet"),
    SubIndication.SIG_CONSTRAINTS_FAILURE: Text("tệp bị thay đổi theo cách người ký không cho phép",
                                                "the file was changed in a way the signer did not allow"),
    SubIndication.CHAIN_CONSTRAINTS_FAILURE: Text("chứng thư số không được phép dùng để ký văn bản",
                                                  "the certificate may not sign documents"),
    SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE: Text("không kiểm tra được chuỗi chứng thư số",
                                                          "the certificate chain could not be checked"),
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE: Text("thuật toán mật mã không còn đủ an toàn",
                                                   "the cryptographic algorithm is no longer strong enough"),
    SubIndication.EXPIRED: Text("chứng thư số đã hết hạn", "the certificate has expired"),
    SubIndication.POLICY_PROCESSING_ERROR: Text("không xử lý được chính sách chữ ký",
                                                "the signature policy could not be processed"),
    SubIndication.SIGNATURE_POLICY_NOT_AVAILABLE: Text("không có chính sách chữ ký",
                                                       "the signature policy is not available"),
    SubIndication.TIMESTAMP_ORDER_FAILURE: Text("thứ tự các dấu thời gian không hợp lý",
                                                "the timestamps are out of order"),
    SubIndication.NO_SIGNING_CERTIFICATE_FOUND: Text("không tìm thấy chứng thư số của người ký",
                                                     "the signer's certificate is missing"),
    SubIndication.NO_CERTIFICATE_CHAIN_FOUND: Text("chứng thư số không thuộc tổ chức chứng thực tin cậy nào",
                                                   "the certificate leads to no trusted authority"),
    SubIndication.REVOKED_NO_POE: Text("chứng thư số đã bị thu hồi, không có bằng chứng đã ký trước đó",
                                       "the certificate was revoked and nothing proves it was signed before"),
    SubIndication.REVOKED_CA_NO_POE: Text("tổ chức cấp chứng thư đã bị thu hồi, không có bằng chứng đã ký trước đó",
                                          "the issuing authority was revoked and nothing proves it was signed "
                                          "before"),
    SubIndication.OUT_OF_BOUNDS_NO_POE: Text("chứng thư số đã hết hạn, không có bằng chứng đã ký khi còn hiệu lực",
                                             "the certificate has expired and nothing proves it was signed while "
                                             "valid"),
    SubIndication.REVOCATION_OUT_OF_BOUNDS_NO_POE: Text("thông tin thu hồi đã quá hạn",
                                                        "the revocation information is out of date"),
    SubIndication.OUT_OF_BOUNDS_NOT_REVOKED: Text("chứng thư số đã hết hạn, không có dấu thời gian",
                                                  "the certificate has expired, no timestamp"),
    SubIndication.CRYPTO_CONSTRAINTS_FAILURE_NO_POE: Text("thuật toán mật mã đã yếu, không có bằng chứng thời điểm ký",
                                                          "the algorithm is weak now and nothing proves when it "
                                                          "was signed"),
    SubIndication.NO_POE: Text("không có bằng chứng về thời điểm ký", "nothing proves when it was signed"),
    SubIndication.TRY_LATER: Text("chưa có thông tin thu hồi, hãy kiểm tra lại sau",
                                  "revocation status not available yet, check again later"),
    SubIndication.SIGNED_DATA_NOT_FOUND: Text("không tìm thấy dữ liệu đã ký", "the signed data is missing"),
    SubIndication.GENERIC: Text("lý do khác", "another reason"),
    SubIndication.NO_SIGNATURE_FOUND: Text("tệp không có chữ ký số", "the file has no signature"),
}

REGISTRY_STATUSES: dict[str, Text] = {
    DocumentStatus.VALID: Text("còn hiệu lực", "in force"),
    DocumentStatus.WITHDRAWN: Text("đã bị thu hồi", "withdrawn"),
    DocumentStatus.SUPERSEDED: Text("đã được thay thế", "replaced"),
}

REVOCATION_STATUSES: dict[str, Text] = {
    "good": Text("chưa bị thu hồi", "not revoked"),
    "revoked": Text("đã bị thu hồi", "revoked"),
    "unknown": Text("chưa rõ", "unknown"),
    "not_checked": Text("không kiểm tra được", "not checked"),
}

REVOCATION_SOURCES: dict[str, Text] = {
    "dss": Text("dữ liệu xác thực kèm trong tệp", "validation data carried in the file"),
    "kyso": Text("cơ sở dữ liệu của kyso", "kyso's own records"),
    "none": Text("không có", "none"),
}

COVERAGE: dict[str, Text] = {
    "entire_file": Text("toàn bộ tệp", "the whole file"),
    "entire_revision": Text("toàn bộ phiên bản đã ký", "the whole signed revision"),
    "partial": Text("một phần tệp", "part of the file"),
}

MODIFICATION_LEVELS: dict[str, Text] = {
    "NONE": Text("không có thay đổi", "no changes"),
    "LTA_UPDATES": Text("chỉ thêm dữ liệu xác thực và dấu thời gian", "only validation data and timestamps added"),
    "FORM_FILLING": Text("điền biểu mẫu hoặc thêm chữ ký", "form filling or further signatures"),
    "ANNOTATIONS": Text("thêm ghi chú", "annotations added"),
    "OTHER": Text("thay đổi khác", "other changes"),
}

DOCMDP: dict[int, Text] = {
    1: Text("không cho phép thay đổi", "no changes allowed"),
    2: Text("cho phép điền biểu mẫu và ký", "form filling and signing allowed"),
    3: Text("cho phép điền biểu mẫu, ký và ghi chú", "form filling, signing and annotations allowed"),
}


def word(table: dict[str, Text], value: object) -> Text:
    """The words for ``value`` from one of the tables above; a value no table knows is said as "other"
    (the code itself is in the report's technical section)."""
    found = table.get(str(value)) if value is not None else None
    return found if found is not None else Text("khác", "other")


_CLASS_REPR = re.compile(r"<class '(?:[\w.]+\.)?(\w+)'>")
_CLASS_WORDS = {"ArrayObject": "array", "DictionaryObject": "dictionary", "StreamObject": "stream",
                "NameObject": "name", "IndirectObject": "reference", "NullObject": "null"}
_EXCEPTION_NAME = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Warning)\b:?\s*")


def plain_message(message: str) -> str:
    """A library's message with the programming words taken out: ``<class '…ArrayObject'>`` becomes
    "array", and exception class names ("ValueError: …") are dropped. Reports quote parsers, never code."""
    text = _CLASS_REPR.sub(lambda m: _CLASS_WORDS.get(m.group(1), "object"), message)
    return _SPACES.sub(" ", _EXCEPTION_NAME.sub("", text)).strip(" :;,")


QUOTE_LIMIT = 120  # characters of one value taken from a verified file
_SPACES = re.compile(r"\s+")


def flat(text: str) -> str:
    """``text`` on one line: line breaks, other control characters and Unicode line or paragraph separators
    become spaces, invisible format characters (bidirectional overrides, zero-width joiners) are dropped, and
    runs of spaces collapse. No sentence of a report needs more; a value that tried gets no line of its own."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        kind = unicodedata.category(ch)
        if kind == "Cf":
            continue
        out.append(" " if kind in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Zs") else ch)
    return _SPACES.sub(" ", "".join(out)).strip()


def one_line(value: object, limit: int = QUOTE_LIMIT) -> str:
    """A value taken from a verified file (field name, certificate subject, TSA name, a parser's message) as
    data: ``flat``, its own « » turned into ‹ › so it cannot close the quotes around it, and cut to ``limit``
    characters with an ellipsis."""
    text = flat(str(value)).replace("«", "‹").replace("»", "›")
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``one_line(value)`` between « »: every string a report takes from the file it judges is shown this way,
    so a file cannot put words of its own (a forged conclusion) where kyso's words go."""
    return f"«{one_line(value, limit)}»"


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(VIETNAM).strftime("%d/%m/%Y %H:%M") if moment else "?"


def who(signer: CertificateInfo | None) -> str:
    """The signer as the certificate names them, quoted: these words come from the verified file."""
    if signer is None:
        return "?"
    parts = [signer.common_name or signer.subject]
    if signer.title:
        parts.append(signer.title)
    if signer.organization:
        parts.append(signer.organization)
    return "«" + ", ".join(one_line(part) for part in parts) + "»"


def reason_text(reason: str | None) -> Text:
    return REASONS.get((reason or "unspecified").replace("-", "_"), REASONS["unspecified"])


def signature_summary(indication: Indication, sub: SubIndication | None, signer: CertificateInfo | None,
                      signed_at: dt.datetime | None, *, revoked_later: tuple[dt.datetime, str | None] | None = None,
                      revoked_at: dt.datetime | None = None, reason: str | None = None,
                      timestamp_kind: bool = False, changed_after: bool = False) -> Text:
    name, at = who(signer), when(signed_at)
    if timestamp_kind:
        if indication == Indication.TOTAL_PASSED:
            return Text(f"Dấu thời gian lưu trữ hợp lệ ({at}), do {name} cấp.",
                        f"Valid archive timestamp ({at}) from {name}.")
        return _failure(indication, sub, name, at, revoked_at, reason)
    if indication == Indication.TOTAL_PASSED:
        if revoked_later:
            revoked, why = revoked_later
            r = reason_text(why)
            return Text(f"Chữ ký hợp lệ tại thời điểm ký ({at}) của {name}; chứng thư số của người ký bị thu hồi "
                        f"sau đó, ngày {when(revoked)}, vì {r.vi}. Văn bản đã ký trước đó vẫn có giá trị.",
                        f"Valid when signed ({at}) by {name}; the signer's certificate was revoked later, on "
                        f"{when(revoked)}, because {r.en}. Documents signed before that stay valid.")
        if changed_after:  # sound for what it signed, and the file is more than that: never "unaltered"
            return Text(f"Chữ ký của {name} lúc {at} đúng với bản đã ký, nhưng tệp đã bị thay đổi sau khi ký.",
                        f"The signature by {name} at {at} matches what was signed, but the file was changed after "
                        "signing.")
        return Text(f"Chữ ký hợp lệ: ký bởi {name} lúc {at}; nội dung không bị thay đổi sau khi ký.",
                    f"Valid signature by {name} at {at}; the content was not changed after signing.")
    return _failure(indication, sub, name, at, revoked_at, reason)


def _failure(indication: Indication, sub: SubIndication | None, name: str, at: str, revoked_at: dt.datetime | None,
             reason: str | None) -> Text:
    r = reason_text(reason)
    texts: dict[SubIndication | None, Text] = {
        SubIndication.HASH_FAILURE: Text("Văn bản đã bị sửa sau khi ký: nội dung không còn khớp với chữ ký. "
                             "Không sử dụng bản này.",
                             "The document was altered after signing: its content no longer matches the signature. "
                             "Do not rely on this copy."),
        SubIndication.SIG_CRYPTO_FAILURE: Text("Chữ ký số không đúng về mặt mật mã: không thể xác nhận người ký.",
                                   "The signature is cryptographically wrong: the signer cannot be confirmed."),
        SubIndication.FORMAT_FAILURE: Text("Chữ ký bị hỏng hoặc không đúng định dạng.",
                               "The signature is damaged or not in a valid format."),
        SubIndication.REVOKED: Text(f"Chữ ký được tạo ({at}) sau khi chứng thư số của {name} đã bị thu hồi "
                        f"({when(revoked_at)}, {r.vi}). Chữ ký không có giá trị.",
                        f"The signature was made ({at}) after {name}'s certificate had been revoked "
                        f"({when(revoked_at)}, {r.en}). It is not valid."),
        SubIndication.REVOKED_NO_POE: Text(f"Chứng thư số của {name} đã bị thu hồi ({when(revoked_at)}, {r.vi}) "
                               "và văn bản không có dấu thời gian chứng minh đã ký trước đó: "
                               "chưa thể khẳng định chữ ký hợp lệ.",
                               f"{name}'s certificate was revoked ({when(revoked_at)}, {r.en}) and no timestamp "
                               "proves the document was signed before that: the signature cannot be confirmed."),
        SubIndication.OUT_OF_BOUNDS_NO_POE: Text(f"Chứng thư số của {name} đã hết hạn và văn bản không có "
                                     "dấu thời gian chứng minh đã ký khi chứng thư còn hiệu lực.",
                                     f"{name}'s certificate has expired and no timestamp proves the document was "
                                     "signed while it was valid."),
        SubIndication.OUT_OF_BOUNDS_NOT_REVOKED: Text(f"Chứng thư số của {name} đã hết hạn; "
                                          "không có dấu thời gian chứng minh thời điểm ký.",
                                          f"{name}'s certificate has expired; no timestamp proves when it was signed."),
        SubIndication.NO_CERTIFICATE_CHAIN_FOUND: Text("Chứng thư số của người ký không thuộc tổ chức chứng thực "
                                           "nào được tin cậy (không phải của Chính phủ, của CA công cộng "
                                           "được cấp phép, hay của kyso).",
                                           "The signer's certificate does not lead to any trusted authority "
                                           "(government, licensed public CA, or kyso)."),
        SubIndication.TRY_LATER: Text("Chưa lấy được thông tin thu hồi của chứng thư số; hãy kiểm tra lại sau.",
                          "The certificate's revocation status is not available yet; check again later."),
        SubIndication.SIG_CONSTRAINTS_FAILURE: Text("Văn bản đã bị thay đổi sau khi ký theo cách người ký "
                                        "không cho phép (ví dụ thêm trang hoặc sửa nội dung).",
                                        "The document was changed after signing in a way the signer did not allow "
                                        "(for example a page added or content edited)."),
        SubIndication.CHAIN_CONSTRAINTS_FAILURE: Text("Chứng thư số không được phép dùng để ký văn bản.",
                                          "The certificate is not allowed to sign documents."),
    }
    if sub in texts:
        return texts[sub]
    if indication == Indication.TOTAL_FAILED:
        return Text("Chữ ký không hợp lệ.", "The signature is not valid.")
    why = word(SUB_INDICATIONS, sub) if sub else Text("không rõ lý do", "reason unknown")
    return Text(f"Chưa thể khẳng định chữ ký của {name} ({why.vi}).",
                f"The signature by {name} cannot be confirmed ({why.en}).")


def revision_only(revision: int, later: int) -> Text:
    return Text(f"Chữ ký chỉ bảo đảm phiên bản {revision} của tệp (bản người ký đã ký); {later} lần cập nhật sau "
                "đó đã thay đổi nội dung (ví dụ thêm trang) mà chữ ký này không bảo đảm.",
                f"The signature vouches for revision {revision} of the file only (what the signer signed); {later} "
                "later revision(s) changed the content (for example a page added), which it does not cover.")


NO_SIGNATURE = Text("Tệp này không có chữ ký số nào.", "This file carries no digital signature.")
TIMESTAMP_ONLY = Text("Tệp chỉ có dấu thời gian, không có chữ ký của người hay cơ quan nào: dấu thời gian chỉ "
                      "chứng minh tệp đã tồn tại vào lúc đó, không chứng minh ai đã ký nó.",
                      "The file carries only a timestamp, no person's or office's signature: a timestamp proves the "
                      "file existed at that time, not that anyone signed it.")


CHANGED_AFTER_SIGNING = Text("Tệp đã bị thay đổi sau khi ký bằng những thay đổi không phải chữ ký, dấu thời gian "
                             "hay dữ liệu xác thực: nội dung đang thấy có thể không phải nội dung đã ký.",
                             "The file was changed after signing by something that is not a signature, a timestamp "
                             "or validation data: what it shows may not be what was signed.")


def file_summary(indication: Indication, signatures: int, registry_status: str | None, document_id: str | None,
                 sub: SubIndication | None = None, *, signed: bool = True, modified: bool = False) -> Text:
    if signatures == 0:
        return NO_SIGNATURE
    if not signed:
        return Text("Tệp chỉ được đóng dấu thời gian, KHÔNG được ký: không thể xác nhận văn bản là xác thực.",
                    "Timestamped, NOT signed: the document cannot be confirmed as genuine.")
    if registry_status == DocumentStatus.WITHDRAWN:
        return Text(f"Văn bản {document_id} đã bị cơ quan ban hành thu hồi; không còn giá trị sử dụng.",
                    f"Document {document_id} was withdrawn by the issuing office; it is no longer valid.")
    if registry_status == DocumentStatus.SUPERSEDED:
        return Text(f"Văn bản {document_id} đã được thay thế bằng văn bản khác; hãy dùng bản mới.",
                    f"Document {document_id} was replaced by another document; use the new one.")
    if indication == Indication.TOTAL_PASSED:
        return Text("Văn bản xác thực: mọi chữ ký đều hợp lệ và nội dung không bị thay đổi.",
                    "Genuine: every signature is valid and the content was not changed.")
    if modified and indication != Indication.TOTAL_FAILED:
        return Text("Tệp đã bị thay đổi sau khi ký: nội dung đang thấy có thể không phải nội dung đã ký. Chữ ký chỉ "
                    "bảo đảm bản trước khi thay đổi; hãy dùng bản đã ký hoặc xin bản gốc từ cơ quan ban hành.",
                    "The file was changed after signing: what it shows may not be what was signed. The signatures "
                    "vouch only for the version before the change; use the signed version or ask the issuing office "
                    "for the original.")
    if indication == Indication.INDETERMINATE and sub == SubIndication.SIG_CONSTRAINTS_FAILURE:
        return Text("Tệp đã bị thay đổi sau khi ký (ví dụ thêm trang): chữ ký chỉ bảo đảm bản trước khi thay đổi. "
                    "Hãy xin bản gốc từ cơ quan ban hành.",
                    "The file was changed after signing (for example a page added): the signatures vouch only for "
                    "the version before that change. Ask the issuing office for the original.")
    if indication == Indication.TOTAL_FAILED:
        return Text("Văn bản KHÔNG hợp lệ: có chữ ký sai hoặc nội dung đã bị sửa.",
                    "NOT valid: a signature is wrong or the content was altered.")
    return Text("Chưa thể khẳng định văn bản là xác thực; xem chi tiết từng chữ ký.",
                "The document cannot be confirmed as genuine yet; see each signature.")


def unrecorded(field: str) -> Text:
    return Text(f"Chữ ký «{field}» dùng chứng thư số do kyso cấp nhưng kyso không có bản ghi nào về việc đã tạo chữ ký "
                "này: không được coi là văn bản do cơ quan ban hành.",
                f"Signature «{field}» uses a certificate kyso issued, but kyso has no record of making it: the file "
                "is not treated as a document the office issued.")


def not_entitled(field: str, version: str | None, reason: str) -> Text:
    field, reason = quoted(field), flat(reason)  # the policy's reason is English: the technical words stay there
    return Text(f"Chữ ký {field}: theo chính sách ký số phiên bản {version}, người ký không có thẩm quyền ký văn bản "
                "này.",
                f"Signature {field}: under signing policy {version} the signer was not entitled to sign this "
                f"document ({reason}).")


def log_text(log: LogRecord) -> Text:
    """One plain line on where the transparency log holds a signature's registration (kyso verified
    the inclusion proof before the report says "logged")."""
    if log.state == "logged":
        return Text(f"Đã ghi vào sổ công khai: mục số {log.index} (phiên bản {log.version}), sổ {log.origin} "
                    f"có {log.tree_size} mục, gốc {log.root_hash}.",
                    f"Logged in the public log: entry {log.index} (version {log.version}), log {log.origin} "
                    f"of {log.tree_size} entries, root {log.root_hash}.")
    if log.state == "pending":
        return Text("Đang ghi vào sổ công khai (vài giây): chưa có bằng chứng.",
                    "Being recorded in the public log (a few seconds): no proof yet.")
    if log.state == "unconfirmed":
        return Text("KHÔNG xác nhận được trong sổ công khai: bằng chứng không khớp.",
                    "NOT confirmed in the public log: the proof does not verify.")
    return Text("Không có trong sổ công khai.", "Not in the public log.")

