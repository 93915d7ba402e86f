#!/usr/bin/python3
"""Generate the reference data that spmtrain's training tests and tokenizer's
CaseOps tests compare against.

The references are SentencePiece 0.1.97 (Debian's spm_train and
python3-sentencepiece, the same C++ library) and the record's own CaseOps
code, lossless_caps.py from the record's folder in the challenge repository
(PR #1729; imported as it is, from --caseops-dir, default /work/ref; no
shims were needed: it is plain Python 3 without torch). Run from anywhere,
with zstd and spm_train on PATH:

    /usr/bin/python3 tokenizer/spmtrain/testdata/gen_train_reference.py [--caseops-dir DIR] [--golf CMD]

It writes, under tokenizer/spmtrain/testdata/train/ (caseops.json.gz under
tokenizer/testdata/train/, for tokenizer's CaseOps tests):

  mixed.txt.gz      generated training text (deterministic): English from the
                    corpus with mixed case and punctuation, other scripts
                    (Cyrillic, Greek, Han, kana and the long vowel mark,
                    Hangul, Arabic, Devanagari, Thai, combining marks),
                    digits of all kinds, whitespace oddities (runs, tabs,
                    CR, NBSP, ideographic space, zero-width characters,
                    whitespace-only lines), characters around the coverage
                    cut (many rare ones with tied counts), long repeated
                    runs, literal special pieces (<s>, <0x41>, U+2581),
                    NULs, invalid UTF-8, lines with U+2585 (skipped) and
                    lines too long for max_sentence_length (skipped).
  reference.json.gz training cases: for each, the input, the spm_train flags,
                    and the reference's pieces, scores and types, the SHA-256
                    of its .model and .vocab files (trained in a folder where
                    the input is named as the case says and --model_prefix is
                    the case name, so that a model trained with the same
                    recorded names is byte-identical), or its error; ids of
                    held-out text encoded with the model (by Python
                    sentencepiece; with --golf, also with the model `golf
                    tokenizer train` writes, which must be the same file).
  caseops.json.gz   CaseOps: the transform of every corpus document (SHA-256;
                    full text for two) and of adversarial strings, decoding
                    of malformed strings (error or not), and the per-token
                    original byte counts (surface_piece_original_byte_counts
                    over encode_as_immutable_proto surfaces, and for the strings the
                    pieces' begin/end byte offsets) of the validation
                    documents and the adversarial strings with the CaseOps
                    model trained in the "caseops_corpus_8192" case.

Inputs named "corpus" are the embedded corpus (data/corpus), one document
per line (the documents hold no newlines). "docs" cases feed multi-line
documents of mixed.txt to the Python trainer's sentence_iterator, as the
challenge's export did (document k is DOC_SIZES[k % 6] consecutive lines
joined by "\\n"); the Python trainer records only the settings it is given,
so for those cases only pieces, scores and types are compared.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import sentencepiece as spm

assert spm.__version__ == "0.1.97", spm.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
OUT = os.path.join(HERE, "train")
CASEOPS_OUT = os.path.join(ROOT, "tokenizer", "testdata", "train")
CORPUS = os.path.join(ROOT, "data", "corpus", "sotu.jsonl.zst")
VAL_DOCS = 24  # data/corpus.ValDocs
DOC_SIZES = [1, 3, 2, 6, 4, 5]

# The challenge's export settings (build_sentencepiece_tokenizer), as flags.
CHALLENGE = {
    "model_type": "bpe", "character_coverage": "0.999", "byte_fallback": "true",
    "split_digits": "true", "normalization_rule_name": "nmt_nfkc",
    "add_dummy_prefix": "false", "pad_id": "0", "bos_id": "1", "eos_id": "2",
    "unk_id": "3", "hard_vocab_limit": "false",
}
CASEOPS_SYMBOLS = "\ue001,\ue002,\ue003,\ue004"


def corpus_texts():
    raw = subprocess.run(["zstd", "-dc", CORPUS], check=True, capture_output=True).stdout
    texts = [json.loads(line)["text"] for line in raw.decode("utf-8").splitlines()]
    for t in texts:
        assert "\n" not in t and "\r" not in t
    return texts


def gen_mixed(texts):
    """Deterministic adversarial training text, as bytes (some lines are not UTF-8)."""
    rng = random.Random(20260501)
    words = " ".join(texts[VAL_DOCS:]).split()
    scripts = {
        "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГД",
        "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΩ",
        "han": "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年",
        "kana": "あいうえおかきくけこさしすせそアイウエオカキクケコーャュョッ",
        "hangul": "가나다라마바사아자차카타파하한국어",
        "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
        "devanagari": "कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह\u093e\u093f\u0940\u0941\u094d",
        "thai": "กขคงจฉชซญดตถทธนบปผพฟภมยรลวสหอฮ",
    }
    marks = "\u0300\u0301\u0302\u0303\u0308\u030a\u0327"
    rare = [chr(c) for c in range(0x2460, 0x24e0)] + [chr(c) for c in range(0x1f300, 0x1f360)] + \
        [chr(c) for c in range(0x0100, 0x0180)] + [chr(c) for c in range(0x3400, 0x3440)]
    lines = []

    def english(n):
        out = []
        for _ in range(n):
            w = rng.choice(words)
            r = rng.random()
            if r < 0.05:
                w = w.upper()
            elif r < 0.1:
                w = w.lower()
            elif r < 0.12:
                w = "".join(c.upper() if rng.random() < 0.5 else c for c in w)
            out.append(w)
        return " ".join(out)

    for i in range(9000):
        kind = i % 12
        if kind < 4:
            line = english(rng.randint(3, 40))
        elif kind == 4:
            s = rng.choice(list(scripts))
            chars = scripts[s]
            toks = ["".join(rng.choice(chars) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(2, 12))]
            line = english(rng.randint(0, 5)) + " " + " ".join(toks)
            if rng.random() < 0.3:
                line += " " + rng.choice("aeiouεαо") + rng.choice(marks) + rng.choice(marks)
        elif kind == 5:
            nums = [str(rng.randint(0, 10 ** rng.randint(1, 9))) for _ in range(rng.randint(1, 6))]
            line = english(rng.randint(1, 8)) + " " + " ".join(nums)
            line += " %04d-%02d-%02d" % (rng.randint(1700, 2100), rng.randint(1, 12), rng.randint(1, 28))
            if rng.random() < 0.3:
                line += " ＄" + "".join(chr(0xff10 + int(d)) for d in str(rng.randint(0, 99999)))
            if rng.random() < 0.2:
                line += " " + "".join(chr(0x0660 + int(d)) for d in str(rng.randint(0, 9999)))
            if rng.random() < 0.2:
                line += " x²³ ½ H₂O"
        elif kind == 6:
            ws = rng.choice(["  ", "\t", "   ", " \t ", "\u00a0", "\u3000", "\u200b", "\u2003", "\r", "\f", "\v"])
            parts = english(rng.randint(2, 10)).split(" ")
            line = ws.join(parts)
            if rng.random() < 0.3:
                line = "  " + line + " \t "
            if rng.random() < 0.05:
                line = " \t \u3000 "
        elif kind == 7:
            line = english(rng.randint(2, 8)) + " " + "".join(rng.choice(rare) for _ in range(rng.randint(1, 3)))
        elif kind == 8:
            unit = rng.choice(["a", "ab", "abc", "-", ".", "1", "xyz ", "ha", "\u2581", "日本", "=", "zz"])
            line = unit * rng.randint(5, 400)
            if rng.random() < 0.5:
                line = english(3) + " " + line
        elif kind == 9:
            specials = ["<s>", "</s>", "<unk>", "<pad>", "<0x41>", "<0xZZ>", "<0x0A>", "\u2581x", "<s", "s>"]
            line = " ".join(rng.choice(specials) if rng.random() < 0.3 else w for w in english(rng.randint(3, 12)).split())
        elif kind == 10:
            line = english(rng.randint(2, 10))
            r = rng.random()
            if r < 0.1:
                line += " \u2585 reserved"
            elif r < 0.2:
                line += "\x00" + english(2)
            elif r < 0.25:
                line = english(900)  # longer than 4192 bytes
            elif r < 0.3:
                line = ""
        else:
            line = english(rng.randint(1, 6)) + " " + "".join(rng.choice(rare[:8]) for _ in range(2))
        lines.append(line.encode("utf-8"))
    # Lines that are not UTF-8 (the reference normalizes each bad byte to U+FFFD).
    for i in range(40):
        lines.insert(rng.randint(0, len(lines)), english(5).encode() + bytes([0xff, 0xc3, 0x28]) + b" ok")
    return b"\n".join(lines) + b"\n"


def mixed_docs(data):
    """Documents of mixed.txt's lines; lines that are not UTF-8 are left out."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    good = []
    for line in lines:
        try:
            good.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    lines = good
    docs, i, k = [], 0, 0
    while i < len(lines):
        n = DOC_SIZES[k % len(DOC_SIZES)]
        docs.append("\n".join(lines[i:i + n]))
        i, k = i + n, k + 1
    return docs


def write_json_gz(path, obj):
    """Deterministic gzip (no timestamp) of compact JSON."""
    with open(path, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
            g.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def golf_flags(flags):
    """spm_train flags as `golf tokenizer train` flags."""
    names = {"vocab_size": "vocab", "input_sentence_size": "input-sentences"}
    out = []
    for k, v in flags.items():
        if k == "model_type":
            continue
        out.append("--%s=%s" % (names.get(k, k.replace("_", "-")), v))
    return out


def sha(b):
    return hashlib.sha256(b).hexdigest()


def ids_sha(ids):
    return hashlib.sha256(" ".join(map(str, ids)).encode()).hexdigest()


def _fields(buf):
    """(number, wire type, value) of each field of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, typ = key >> 3, key & 7
        if typ == 0:
            v, i = _varint(buf, i)
        elif typ == 5:
            v, i = buf[i:i + 4], i + 4
        elif typ == 1:
            v, i = buf[i:i + 8], i + 8
        elif typ == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % typ)
        yield num, typ, v


def _varint(buf, i):
    v, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def read_model_pieces(path):
    """The pieces, scores and types of a .model file (parsed here: Debian's
    python3-sentencepiece has no protobuf module, and its processor does not
    report USER_DEFINED)."""
    import struct
    with open(path, "rb") as f:
        data = f.read()
    pieces, scores, types = [], [], []
    for num, typ, v in _fields(data):
        if num != 1:
            continue
        piece, score, t = "", 0.0, 1
        for n2, t2, v2 in _fields(v):
            if n2 == 1:
                piece = v2.decode("utf-8")
            elif n2 == 2:
                score = struct.unpack("<f", v2)[0]
            elif n2 == 3:
                t = v2
        pieces.append(piece)
        scores.append(score)
        types.append(t)
    return spm.SentencePieceProcessor(model_file=path), pieces, scores, types


def held_out(texts, case):
    if case["input"] in ("corpus", "caseops_corpus"):
        return [t[:3000] for t in texts[:3]]
    return [
        "Hello, World! The NASA launch in 2021-01-20 cost $1,234,567.89.",
        "  leading and trailing  whitespace\t\tand\ttabs  ",
        "Ünïcödé ñ 日本語のテキスト 한국어 العربية हिन्दी ไทย Ελληνικά русский",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ababababababab ----- ..... 1111111",
        "<s> </s> <unk> <pad> <0x41> \u2581 \ue001 rare ⑥ 🌀 \u0100\u0101",
        "x² ½ H₂O ＡＢＣ ﬁne",
    ]


def caseops_inputs():
    return [
        "The NASA Launch", "McDonald iPhone eBay HTTPRequest", "A a B b AB Ab aB ABc aBC abC",
        "I", "DON'T STOP", "x-Ray X-RAY", "O'Neill MacArthur", "ÉCOLE école Émile É", "Straße STRASSE ß",
        "ＡＢＣ Ｈｅｌｌｏ", "ﬁne ﬂow Ǆ ǅ", "E\u0301cole", "naïve NAÏVE", "A1B2 ab12CD", "snake_case CONSTANT_NAME",
        "\ue000\ue001\ue002\ue003\ue004\ue005", "literal \ue001Title and \ue004 escape", "\ue002\ue002\ue002",
        "Mixed \ue003CapNext", "  Leading and Trailing  ", "\tTab\tSeparated\tWords\t", "New\nLine\r\nCRLF",
        "EMOJI 🚀 Rocket", "UPPER lower Title mIxEd", "a", "Z", "", " ", "ÀÉÎÕÜ Ünïcode", "123 ABC def GHI",
        "ＮＡＳＡ", "İstanbul ǈ ǉ", "  Multiple   Internal   Spaces  ", "ＨＥＬＬＯ World",
        "\u3000Ideographic\u3000Space\u3000", "\u00a0No-Break\u00a0", "Tab\t\tTab", "x\u0000Nul", "QWERTYUIOPASDFGHJKLZXCVBNM" * 3, "aAaAaAaA" * 5,
    ]


def caseops_malformed():
    return [
        "\ue001", "\ue001 ", "\ue001\ue001a", "a\ue001b", "\ue003\ue003a", "\ue004", "\ue002\ue004\ue001",
        "\ue002\ue004a", "\ue003", "ab\ue003", "\ue003 a", "\ue004\ue004", "\ue001a\ue002b", "\ue003A",
        "\ue001é", "ok", "\ue004x", "\ue003a\ue003b",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caseops-dir", default="/work/ref", help="folder holding the record's lossless_caps.py")
    ap.add_argument("--golf", default="", help="golf command (e.g. 'go run ./cmd/golf'): also train with it and encode with its models")
    args = ap.parse_args()
    sys.path.insert(0, args.caseops_dir)
    import lossless_caps as lc  # the record's file, unmodified

    os.makedirs(OUT, exist_ok=True)
    texts = corpus_texts()
    mixed = gen_mixed(texts)
    with open(os.path.join(OUT, "mixed.txt.gz"), "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, compresslevel=9) as g:
            g.write(mixed)
    docs = mixed_docs(mixed)
    caseops_corpus = "\n".join(lc.encode_lossless_caps_v2(t) for t in texts[VAL_DOCS:]) + "\n"

    inputs = {
        "corpus": ("corpus.txt", ("\n".join(texts[VAL_DOCS:]) + "\n").encode()),
        "mixed": ("mixed.txt", mixed),
        "caseops_corpus": ("caseops_corpus.txt", caseops_corpus.encode()),
    }
    long = {"max_sentence_length": "300000"}
    cases = []

    def case(name, inp, flags, via="cli"):
        cases.append({"name": name, "input": inp, "flags": flags, "via": via})

    for v in (1024, 4096, 8192):
        case("corpus_%d" % v, "corpus", dict(CHALLENGE, vocab_size=str(v), **long))
        case("mixed_%d" % v, "mixed", dict(CHALLENGE, vocab_size=str(v)))
    case("caseops_corpus_8192", "caseops_corpus", dict(CHALLENGE, vocab_size="8192", user_defined_symbols=CASEOPS_SYMBOLS, **long))
    case("caseops_corpus_1024", "caseops_corpus", dict(CHALLENGE, vocab_size="1024", user_defined_symbols=CASEOPS_SYMBOLS, **long))
    case("sampled_shuffle", "mixed", dict(CHALLENGE, vocab_size="2000", input_sentence_size="3000"))
    case("sampled_first", "mixed", dict(CHALLENGE, vocab_size="2000", input_sentence_size="3000", shuffle_input_sentence="false"))
    case("nosplit_ws", "mixed", dict(CHALLENGE, vocab_size="3000", split_by_whitespace="false", max_sentencepiece_length="8"))
    case("suffix_wsonly", "mixed", dict(CHALLENGE, vocab_size="2500", treat_whitespace_as_suffix="true",
                                          allow_whitespace_only_pieces="true", add_dummy_prefix="true",
                                          remove_extra_whitespaces="false"))
    case("wsonly_prefix", "mixed", dict(CHALLENGE, vocab_size="2500", allow_whitespace_only_pieces="true",
                                          split_by_whitespace="false", remove_extra_whitespaces="false"))
    case("identity_nobytes", "mixed", {"model_type": "bpe", "vocab_size": "2500", "normalization_rule_name": "identity",
                                        "split_by_number": "false", "split_by_unicode_script": "false",
                                        "max_sentencepiece_length": "4", "character_coverage": "0.9995"})
    case("specials", "mixed", dict(CHALLENGE, vocab_size="1500", required_chars="ΩД㐀",
                                     control_symbols="<ctl>,<s>", user_defined_symbols="<sep>,hello,2021,\u2581the",
                                     pad_id="-1", unk_id="0", bos_id="1", eos_id="5", unk_piece="<UNK>",
                                     character_coverage="0.98"))
    case("short_sentences", "mixed", dict(CHALLENGE, vocab_size="1500", max_sentence_length="800"))
    case("required_absent_error", "mixed", dict(CHALLENGE, vocab_size="1500", required_chars="Ж"))
    case("hard_limit_error", "corpus", dict(CHALLENGE, vocab_size="200000", hard_vocab_limit="true", **long))
    case("too_small_error", "mixed", dict(CHALLENGE, vocab_size="300"))
    case("docs_python", "docs", dict(CHALLENGE, vocab_size="4096"), via="python")
    case("docs_python_sampled", "docs", dict(CHALLENGE, vocab_size="1500", input_sentence_size="1000"), via="python")

    tmp = tempfile.mkdtemp()
    results = []
    try:
        for c in cases:
            print("case", c["name"], flush=True)
            r = dict(c)
            prefix = os.path.join(tmp, c["name"])
            if c["via"] == "cli":
                fname, data = inputs[c["input"]]
                with open(os.path.join(tmp, fname), "wb") as f:
                    f.write(data)
                cmd = ["spm_train", "--input=" + fname, "--model_prefix=" + c["name"]] + \
                      ["--%s=%s" % kv for kv in c["flags"].items()]
                p = subprocess.run(cmd, cwd=tmp, capture_output=True)
                if p.returncode != 0:
                    r["error"] = True
                    print("  reference fails (as expected?):", p.stderr.decode()[-300:].strip().splitlines()[-1])
                    results.append(r)
                    continue
            else:
                try:
                    kw = {k: v for k, v in c["flags"].items()}
                    cwd = os.getcwd()
                    os.chdir(tmp)  # so that the model records a fixed prefix
                    try:
                        spm.SentencePieceTrainer.train(sentence_iterator=iter(docs), model_prefix=c["name"], **kw)
                    finally:
                        os.chdir(cwd)
                except Exception as e:  # noqa: BLE001
                    r["error"] = True
                    print("  reference fails:", e)
                    results.append(r)
                    continue
            model = prefix + ".model"
            with open(model, "rb") as f:
                r["model_sha256"] = sha(f.read())
            with open(prefix + ".vocab", "rb") as f:
                r["vocab_sha256"] = sha(f.read())
            sp, r["pieces"], r["scores"], r["types"] = read_model_pieces(model)
            r["held_out"] = [{"text": t, "ids": sp.encode(t)} for t in held_out(texts, c)]
            if c["input"] == "corpus" or c["input"] == "caseops_corpus":
                r["val_ids_sha256"] = [ids_sha(sp.encode(t if c["input"] == "corpus" else lc.encode_lossless_caps_v2(t)))
                                       for t in texts[:VAL_DOCS]]
            if args.golf and c["via"] == "cli":
                golf_model = os.path.join(tmp, c["name"] + ".golf.model")
                gcmd = args.golf.split() + ["tokenizer", "train", "--spm-defaults", "--sentences", "lines", "--quiet",
                                            "--record-input", fname, "--model-prefix", c["name"],
                                            "--out", golf_model] + golf_flags(c["flags"]) + [os.path.join(tmp, fname)]
                subprocess.run(gcmd, check=True, cwd=ROOT)
                with open(golf_model, "rb") as f:
                    same = sha(f.read()) == r["model_sha256"]
                gsp = spm.SentencePieceProcessor(model_file=golf_model)
                r["golf_model_identical"] = same
                r["golf_held_out_ids"] = [gsp.encode(t) for t in held_out(texts, c)]
                print("  golf model identical:", same)
            print("  %d pieces" % len(r["pieces"]))
            results.append(r)

        # CaseOps.
        co = {"transform_name": lc.LOSSLESS_CAPS_CASEOPS_V1}
        co["corpus"] = [sha(lc.encode_lossless_caps_v2(t).encode()) for t in texts]
        co["corpus_full"] = {str(i): lc.encode_lossless_caps_v2(texts[i]) for i in (5, 100)}
        co["strings"] = [{"text": s, "encoded": lc.encode_lossless_caps_v2(s),
                          "decoded": lc.decode_lossless_caps_v2(lc.encode_lossless_caps_v2(s))} for s in caseops_inputs()]
        mal = []
        for s in caseops_malformed():
            try:
                out = lc.decode_lossless_caps_v2(s)
                mal.append({"text": s, "decoded": out})
            except lc.LosslessCapsError as e:
                mal.append({"text": s, "error": str(e)})
        co["malformed"] = mal
        sp = spm.SentencePieceProcessor(model_file=os.path.join(tmp, "caseops_corpus_8192.model"))

        def counts(original, spans=None):
            transformed = lc.encode_lossless_caps_v2(original)
            proto = sp.encode_as_immutable_proto(transformed)
            ids = [p.id for p in proto.pieces]
            c = lc.surface_piece_original_byte_counts((p.surface for p in proto.pieces),
                                                      text_transform_name=lc.LOSSLESS_CAPS_CASEOPS_V1)
            if spans is not None:
                spans.extend([p.begin, p.end] for p in proto.pieces)
            return ids, c

        co["model_case"] = "caseops_corpus_8192"
        val = []
        for i, t in enumerate(texts[:VAL_DOCS]):
            ids, c = counts(t)
            e = {"ids_sha256": ids_sha(ids), "counts_sha256": ids_sha(c), "total": sum(c), "utf8": len(t.encode())}
            if i < 2:
                e["counts"] = c
            val.append(e)
        co["val"] = val
        co["string_counts"] = []
        for s in caseops_inputs():
            spans = []
            ids, c = counts(s, spans)
            co["string_counts"].append({"text": s, "ids": ids, "counts": c, "spans": spans})
        write_json_gz(os.path.join(CASEOPS_OUT, "caseops.json.gz"), co)
    finally:
        shutil.rmtree(tmp)
    write_json_gz(os.path.join(OUT, "reference.json.gz"), {"cases": results})
    print("wrote", OUT)


main()
