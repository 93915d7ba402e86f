#!/usr/bin/python3
"""Generate the reference data that tokenizer's parity tests compare against.

The reference is SentencePiece 0.1.97 (Debian's python3-sentencepiece, the C++
library behind it). Run from anywhere, with the zstd command on PATH:

    /usr/bin/python3 tokenizer/testdata/gen_reference.py [--train]

It writes tokenizer/testdata/reference_<vocab>.json.gz for the embedded sp1024
model (tokenizer/models/) and the sp8192 model kept here, and
reference_<variant>.json.gz for each small model in variants/ (see VARIANTS:
trained here with other settings, so that the tests cover what the two real
models do not: no byte fallback, a dummy prefix, whitespace as suffix,
pieces with inner spaces, user-defined and unused pieces, other charsmaps,
a denormalizer, self-test samples). The variant models are committed; they
are retrained (deterministically, from the corpus) only with --train or when
missing (a retrained model may differ in its self-test samples, which the
trainer draws at random, so retraining changes the committed files). Each
reference file holds:

  cases    adversarial inputs (given as hex: some are not UTF-8) with the
           reference's ids, pieces, normalized text (the pieces joined, byte
           pieces as bytes) and decoded text;
  sweep    every code point, in blocks of 128, both concatenated and separated
           by spaces: token count and the first 16 hex digits of the SHA-256
           of the ids;
  corpus   every document of data/corpus: token count, SHA-256 of the ids, and
           the val_bpb byte count of [BOS] + ids; full ids for a few documents;
  decode   id sequences (random and hand-made) with the reference's decoding.

For the variants, sweep is present only where the charsmap differs from
sp1024's, and corpus covers the first VARIANT_DOCS documents.

SHA-256 is taken over the ids written in decimal, separated by single spaces
(the format of `spm_encode --output_format=id` and `golf tokenize`).
Invalid UTF-8 is passed to the reference as bytes, which is also what
`spm_encode` and `golf tokenize` see when reading a file.
"""

import gzip
import hashlib
import re
import shutil
import tempfile
import json
import os
import random
import subprocess
import sys

import sentencepiece as spm

assert spm.__version__ == "0.1.97", spm.__version__

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODELS = {
    1024: os.path.join(ROOT, "tokenizer", "models", "fineweb_1024_bpe.model"),
    8192: os.path.join(HERE, "fineweb_8192_bpe.model"),
}
CORPUS = os.path.join(ROOT, "data", "corpus", "sotu.jsonl.zst")
FULL_IDS_DOCS = 3  # the shortest documents get their full ids stored


def ids_sha(ids):
    return hashlib.sha256(" ".join(map(str, ids)).encode()).hexdigest()


def luts(sp):
    """build_sentencepiece_luts from the challenge's train_gpt.py, in numpy-free form."""
    n = sp.vocab_size()
    base, space, boundary = [0] * n, [False] * n, [True] * n
    for i in range(n):
        if sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i):
            continue
        boundary[i] = False
        if sp.is_byte(i):
            base[i] = 1
            continue
        piece = sp.id_to_piece(i)
        if piece.startswith("\u2581"):
            space[i] = True
            piece = piece[1:]
        base[i] = len(piece.encode("utf-8"))
    return base, space, boundary


def count_bytes(lut, stream):
    """Bytes of stream[1:], each token counted after its predecessor."""
    base, space, boundary = lut
    n = len(base)
    total = 0
    for prev, tok in zip(stream, stream[1:]):
        if tok >= n:
            continue
        prev_boundary = prev < 0 or prev >= n or boundary[prev]  # bos_id -1: no BOS piece
        total += base[tok] + (1 if space[tok] and not prev_boundary else 0)
    return total


def piece_bytes(sp, i, piece):
    if sp.is_byte(i):
        return bytes([int(piece[3:5], 16)])
    return piece.encode("utf-8")


def adversarial_inputs():
    """(name, bytes) pairs: edge cases of normalization, segmentation, decoding."""
    u = lambda s: s.encode("utf-8")
    cases = [
        ("empty", b""),
        ("space", b" "),
        ("spaces", b"     "),
        ("tab", b"\t"),
        ("newline", b"\n"),
        ("crlf", b"\r\n"),
        ("all ascii whitespace", b" \t\n\r\f\v "),
        ("letter", b"a"),
        ("leading space", b" a"),
        ("trailing space", b"a "),
        ("padded", b"   a   "),
        ("double space", b"a  b"),
        ("tab between", b"a\tb"),
        ("newline between", b"a\nb"),
        ("crlf between", b"a\r\nb"),
        ("blank lines", b"a\n\n\nb"),
        ("surrounding newlines", b"\n\na\n\n"),
        ("mixed newlines", b"line one\r\nline two\rline three\nline four\n\rfive"),
        ("whitespace soup", b" \t a \n\t b \r\n c \x0b\x0c d "),
        ("hello newline", b"Hello\nworld"),
        ("nbsp", u("\u00a0")),
        ("nbsp between", u("a\u00a0b")),
        ("ideographic space", u("a\u3000b")),
        ("em space", u("a\u2003b")),
        ("line separator", u("a\u2028b")),
        ("paragraph separator", u("a\u2029b")),
        ("zero width space", u("a\u200bb")),
        ("bom", u("\ufeffa\ufeffb")),
        ("next line", u("a\u0085b")),
        ("mongolian vowel separator", u("a\u180eb")),
        ("ideographic padding", u("\u3000\u3000a\u3000\u3000")),
        ("combining acute", u("e\u0301")),
        ("combining diaeresis", u("a\u0308 o\u0308 u\u0308")),
        ("ring above", u("A\u030a")),
        ("hangul jamo", u("\u1100\u1161\u11a8 \u1112\u1161\u11ab")),
        ("tilde", u("n\u0303o")),
        ("stacked marks", u("e\u0301\u0301\u0301")),
        ("lone mark", u("\u0301alone")),
        ("marks order", u("o\u0302\u0323 o\u0323\u0302")),
        ("precomposed vs not", u("\u1ec7 e\u0323\u0302")),
        ("emoji", u("\U0001f600")),
        ("emoji skin tone", u("\U0001f44d\U0001f3fd")),
        ("emoji zwj family", u("\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466")),
        ("flag", u("\U0001f1fa\U0001f1f8")),
        ("heart variation", u("\u2764\ufe0f")),
        ("emoji in text", u("emoji \U0001f600 in text \U0001f680!")),
        ("japanese", u("\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8")),
        ("chinese", u("\u4e2d\u6587\u6587\u672c\uff0c\u6807\u70b9\u7b26\u53f7\u3002")),
        ("korean", u("\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8")),
        ("halfwidth katakana", u("\uff76\uff80\uff76\uff85 \uff8a\uff9e")),
        ("hebrew", u("\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd")),
        ("arabic", u("\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645")),
        ("bidi mix", u("abc \u05e9\u05dc\u05d5\u05dd def \u0645\u0631\u062d\u0628\u0627 123")),
        ("bidi marks", u("a\u200fb\u200ec\u202ed\u202c")),
        ("devanagari", u("\u0928\u092e\u0938\u094d\u0924\u0947")),
        ("thai", u("\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35")),
        ("c0 controls", bytes(range(0, 32))),
        ("controls between letters", b"".join(b"a" + bytes([c]) for c in range(32)) + b"a"),
        ("del", b"a\x7fb"),
        ("c1 controls", u("".join(chr(c) for c in range(0x80, 0xa0)))),
        ("nul", b"\x00"),
        ("nul between", b"a\x00b"),
        ("nuls", b"\x00\x00\x00"),
        ("nul and spaces", b" \x00 \x00 "),
        ("invalid ff", b"\xff"),
        ("overlong nul", b"\xc0\x80"),
        ("surrogate", b"\xed\xa0\x80"),
        ("beyond max", b"\xf4\x90\x80\x80"),
        ("truncated 3", b"\xe2\x82"),
        ("lone continuation", b"\x80\x80"),
        ("overlong slash", b"\xe0\x80\xaf"),
        ("invalid in word", b"abc\xfe\xfdxyz"),
        ("truncated emoji", b"\xf0\x9f\x98"),
        ("truncated emoji then text", b"\xf0\x9f\x98 ok"),
        ("replacement char", u("\ufffd")),
        ("invalid then space mark", b"\xe2\xe2\x96\x81x"),
        ("digits", b"0123456789"),
        ("number", b"1,234,567.89"),
        ("pi", b"3.14159265358979"),
        ("date", b"On 2021-01-20, at 12:00"),
        ("arabic digits", u("\u0661\u0662\u0663")),
        ("fullwidth digits", u("\uff11\uff12\uff13")),
        ("superscripts", u("x\u00b2\u00b3\u00b9 x\u00b2")),
        ("fractions", u("\u00bd \u00bc \u00be \u2153")),
        ("circled", u("\u2460\u2461\u2462 \u2474")),
        ("roman", u("\u216b \u2170")),
        ("ligatures", u("\ufb01 \ufb02 \ufb00 \ufb03 \ufb04 \ufb06")),
        ("fullwidth", u("\uff21\uff42\uff43 \uff58")),
        ("subscripts", u("H\u2082O")),
        ("symbols", u("\u2122 \u2103 \u338f \u337f \u2026")),
        ("titlecase digraph", u("\u01c5")),
        ("angstrom ohm", u("\u212b \u2126")),
        ("long s", u("\u017f")),
        ("enclosed", u("\u3231 \u210c")),
        ("math bold", u("\U0001d400\U0001d401\U0001d402")),
        ("spacing accents", u("\u00b4 \u02dc \u0385 \u00a8")),
        ("ideographic full stop", u("a\u3002b")),
        ("pieces as text", b"<s></s><unk><pad><0x41><0x00>"),
        ("bos text", b"<s>"),
        ("unk text", b"<unk>"),
        ("byte text", b"<0x41>"),
        ("space mark", u("\u2581")),
        ("space marks", u("\u2581\u2581")),
        ("space mark spaced", u(" \u2581 ")),
        ("space mark inside", u("a\u2581b")),
        ("space mark first", u("\u2581hello")),
        ("space mark last", u("hello\u2581")),
        ("space mark and space", u("a \u2581 b\u2581 c")),
        ("long a", b"a" * 5000),
        ("long ab", b"ab" * 3000),
        ("long dots", b"." * 2000),
        ("long dashes", b"-" * 1000),
        ("long spaces then x", b" " * 1000 + b"x"),
        ("long newlines", b"\n" * 500 + b"x" + b"\n" * 500),
        ("long space marks", u("\u2581" * 50)),
        ("long emoji", u("\U0001f600" * 200)),
        ("long ones", b"1" * 3000),
        ("long the", b"the" * 1000),
        ("long words spaced", b" ".join([b"supercalifragilisticexpialidocious"] * 50)),
        ("sentence", b"The quick brown fox jumps over the lazy dog."),
        ("address", b"Mr. Speaker, Mr. Vice President, Members of Congress, my fellow Americans:"),
        ("quotes", u("\u201cquoted\u201d \u2018single\u2019 \u00abguillemets\u00bb")),
        ("dashes", u("a\u2013b\u2014c\u2212d")),
        ("all bytes", bytes(range(256))),
        ("all ascii printable", bytes(range(32, 127))),
    ]
    for b in range(256):
        cases.append(("byte %02x" % b, bytes([b])))
        cases.append(("byte %02x in word" % b, b"x" + bytes([b]) + b"y"))
    rng = random.Random(20260518)
    letters = "abcdefghijklmnopqrstuvwxyz"
    cases.append(("long random word", "".join(rng.choice(letters) for _ in range(20000)).encode()))
    cases.append(("long random text", " ".join("".join(rng.choice(letters) for _ in range(rng.randint(1, 12))) for _ in range(3000)).encode()))
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " \t\n\r\u00a0\u3000\u2003\u200b\ufeff\u2028\u0085\u2581",
        ".,;:!?'\"()[]{}<>-_/\\@#$%^&*+=~`|",
        "\u0301\u0308\u0303\u0323\u0302\u030a\u0327",
        "\u00e9\u00fc\u00f1\u00e7\u00c5\u1ec7\u00df\u0131\u0130",
        "\ufb01\ufb02\uff21\uff58\u00b2\u00bd\u2460\u2122\u2126\u212b\u017f\u01c5\u3231\uff76\uff9e",
        "\u65e5\u672c\u4e2d\ud55c\u1100\u1161\u11a8\u05e9\u0645\u0928\u0e2a",
        "\U0001f600\U0001f44d\U0001f3fd\u200d\u2764\ufe0f\U0001f1fa\U0001f1f8\U0001d400",
        "\x00\x01\x07\x1b\x7f\u0080\u009f\u200e\u200f",
    ]
    for i in range(400):
        n = rng.randint(1, 60)
        s = "".join(rng.choice(rng.choice(pools)) for _ in range(n))
        b = s.encode("utf-8")
        if i % 4 == 3:  # splice in malformed bytes
            pos = rng.randint(0, len(b))
            b = b[:pos] + bytes(rng.randint(0x80, 0xff) for _ in range(rng.randint(1, 3))) + b[pos:]
        cases.append(("random %d" % i, b))
    return cases


def sweep_blocks():
    ranges = [(0, 0xD800), (0xE000, 0x323B0), (0xE0000, 0xE01F0), (0xF0000, 0xF0100), (0x10FF00, 0x110000)]
    for lo, hi in ranges:
        for start in range(lo, hi, 128):
            yield start, [chr(c) for c in range(start, min(start + 128, hi))]


def decode_cases(sp, rng):
    n = sp.vocab_size()
    space = sp.piece_to_id("\u2581")
    the = sp.piece_to_id("\u2581the")
    if sp.is_unknown(the):
        the = sp.piece_to_id("the\u2581")  # whitespace as suffix
    byte = lambda b: sp.piece_to_id("<0x%02X>" % b)  # the unknown id without byte pieces
    cases = [
        [],
        [sp.bos_id()],
        [sp.bos_id(), the],
        [the, the],
        [space, space, the],
        [space, sp.unk_id(), the],
        [sp.unk_id(), sp.unk_id()],
        [sp.bos_id(), sp.eos_id(), sp.pad_id(), the],
        [byte(0xE2), byte(0x96), byte(0x81), the],
        [byte(0xE2), byte(0x96), the],
        [byte(0xFF), byte(0x41), byte(0xC3), byte(0xA9), byte(0xC3)],
        [byte(0xF0), byte(0x9F), byte(0x98), byte(0x80), space, byte(0xF0)],
        [byte(0x20), the],
        [sp.bos_id(), byte(0x41), the],
        [the, sp.bos_id(), the, sp.eos_id(), space],
    ]
    for _ in range(300):
        cases.append([rng.randrange(n) for _ in range(rng.randint(0, 40))])
    # Mostly byte pieces, to exercise reassembly of valid and broken UTF-8.
    for _ in range(100):
        cases.append([byte(rng.choice([0x41, 0x20, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xFF]))
                      if rng.random() < 0.8 else rng.randrange(n) for _ in range(rng.randint(1, 20))])
    cases = [[i for i in ids if 0 <= i < n] for ids in cases]  # a model may lack BOS etc. (id -1)
    return [{"ids": ids, "text": sp.decode(ids)} for ids in cases]


def corpus_texts():
    raw = subprocess.run(["zstd", "-dc", CORPUS], check=True, capture_output=True).stdout
    return [json.loads(line)["text"] for line in raw.splitlines() if line.strip()]


def generate(vocab, path, texts, sweep=True, docs=None, tag=None):
    sp = spm.SentencePieceProcessor(model_file=path)
    lut = luts(sp)
    out = {"model": os.path.basename(path), "sentencepiece": spm.__version__,
           "vocab_size": sp.vocab_size(), "cases": [], "sweep": [], "corpus": [], "decode": []}
    if docs is not None:
        texts = texts[:docs]
    for name, data in adversarial_inputs():
        ids = sp.encode(data)
        pieces = [p.decode("utf-8") for p in sp.encode(data, out_type=str)]
        normalized = b"".join(piece_bytes(sp, i, p) for i, p in zip(ids, pieces))
        out["cases"].append({
            "name": name,
            "input_hex": data.hex(),
            "ids": ids,
            "pieces": pieces,
            "normalized": normalized.decode("utf-8"),
            "decoded": sp.decode(ids),
            "bpb_bytes": count_bytes(lut, [sp.bos_id()] + ids),
        })
    for start, chars in (sweep_blocks() if sweep else []):
        for sep in ("", " "):
            ids = sp.encode(sep.join(chars).encode("utf-8", "surrogatepass"))
            out["sweep"].append({"start": start, "sep": sep, "tokens": len(ids), "sha256_16": ids_sha(ids)[:16]})
    shortest = sorted(range(len(texts)), key=lambda i: len(texts[i]))[:FULL_IDS_DOCS]
    for i, text in enumerate(texts):
        ids = sp.encode(text)
        entry = {"doc": i, "tokens": len(ids), "sha256": ids_sha(ids), "bpb_bytes": count_bytes(lut, [sp.bos_id()] + ids)}
        if i in shortest:
            entry["ids"] = ids
        out["corpus"].append(entry)
    out["decode"] = decode_cases(sp, random.Random(vocab))
    dst = os.path.join(HERE, "reference_%s.json.gz" % (tag or vocab))
    with gzip.GzipFile(dst, "wb", mtime=0) as f:
        f.write(json.dumps(out, ensure_ascii=False, indent=0).encode("utf-8"))
    print("wrote", dst, file=sys.stderr)


# Variant models: name -> (trainer settings, edits applied to the trained
# model's proto). All are BPE, trained on the corpus sentences.
VARIANTS_DIR = os.path.join(HERE, "variants")
VARIANT_DOCS = 40
VARIANTS = {
    # No byte fallback (runs of unknown characters become one <unk>), a dummy
    # prefix, a custom unknown surface, NFKC without the nmt extras, digits
    # merged, self-test samples the loader must verify.
    "nobytes": (dict(vocab_size=600, normalization_rule_name="nfkc", add_dummy_prefix=True,
                     byte_fallback=False, character_coverage=0.998, unk_surface="<?>",
                     self_test_sample_size=20), []),
    # Whitespace marks at the end of pieces, no whitespace clean-up, identity
    # normalization, user-defined and control pieces, other special ids, a
    # denormalizer.
    "suffix": (dict(vocab_size=700, normalization_rule_name="identity", add_dummy_prefix=True,
                    remove_extra_whitespaces=False, treat_whitespace_as_suffix=True, byte_fallback=True,
                    user_defined_symbols="<sep>,hello,2021,x\u2581", control_symbols="<ctl>",
                    unk_id=0, bos_id=-1, eos_id=1, pad_id=2, split_digits=True,
                    denormalization_rule_tsv="DENORM"), []),
    # Pieces that span spaces (no word splitting in training), whitespace-only
    # pieces, NFKC with case folding.
    "spans": (dict(vocab_size=900, normalization_rule_name="nmt_nfkc_cf", split_by_whitespace=False,
                   allow_whitespace_only_pieces=True, byte_fallback=True, add_dummy_prefix=False,
                   user_defined_symbols="New\u2581York"), []),
    # nobytes with every 5th merged piece UNUSED (the encoder must undo such
    # merges) and spaces left unescaped.
    "unused": ("nobytes", ["unused", "noescape"]),
}


def sentences(texts):
    """Training lines: the corpus split into sentences, each under spm's length limit."""
    for t in texts:
        for s in re.split(r"(?<=[.!?])\s+", t):
            if 0 < len(s.encode()) < 4000:
                yield s


# A minimal protobuf reader/writer, enough to edit a ModelProto.
def read_varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out.append(c | 0x80)
        else:
            out.append(c)
            return bytes(out)


def fields(b):
    """Yields (number, wire type, raw value bytes) of a message's fields."""
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        num, typ = key >> 3, key & 7
        start = i
        if typ == 0:
            _, i = read_varint(b, i)
            yield num, typ, b[start:i]
        elif typ == 1:
            i += 8
            yield num, typ, b[start:i]
        elif typ == 5:
            i += 4
            yield num, typ, b[start:i]
        elif typ == 2:
            n, i = read_varint(b, i)
            yield num, typ, b[i:i + n]
            i += n
        else:
            raise ValueError("unexpected wire type %d" % typ)


def field(num, typ, value):
    if typ == 2:
        return varint(num << 3 | 2) + varint(len(value)) + value
    return varint(num << 3 | typ) + value


def edit_model(data, edits):
    out = bytearray()
    normal = 0
    for num, typ, value in fields(data):
        if num == 4 and edits:
            continue  # self_test_data: the edits change the expected pieces
        if num == 1 and "unused" in edits:  # a SentencePiece
            sub = list(fields(value))
            types = [read_varint(v, 0)[0] for n, t, v in sub if n == 3]
            if not types or types[-1] == 1:  # NORMAL
                normal += 1
                if normal > 300 and normal % 5 == 0:
                    sub = [f for f in sub if f[0] != 3] + [(3, 0, varint(5))]  # UNUSED
            value = b"".join(field(n, t, v) for n, t, v in sub)
        out += field(num, typ, value)
    if "noescape" in edits:
        # Fields of a repeated occurrence of a message merge into it: this
        # sets normalizer_spec.escape_whitespaces = false.
        out += field(3, 2, field(5, 0, varint(0)))
    return bytes(out)


def train_variants(texts):
    os.makedirs(VARIANTS_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp()
    try:
        train_file = os.path.join(tmp, "sentences.txt")
        with open(train_file, "w", encoding="utf-8") as f:
            for s in sentences(texts):
                f.write(s + "\n")
        denorm = os.path.join(tmp, "denorm.tsv")
        with open(denorm, "w") as f:
            f.write("68 65 6C 6C 6F\t48 45 4C 4C 4F\n")  # hello -> HELLO
            f.write("2581\t5F\n")  # a literal U+2581 -> _
        for name, (settings, edits) in VARIANTS.items():
            dst = os.path.join(VARIANTS_DIR, name + ".model")
            if isinstance(settings, str):  # an edit of another variant
                with open(os.path.join(VARIANTS_DIR, settings + ".model"), "rb") as f:
                    data = edit_model(f.read(), edits)
                spm.SentencePieceProcessor(model_proto=data)  # the reference must accept it
                with open(dst, "wb") as f:
                    f.write(data)
                continue
            args = dict(settings, input=train_file, model_prefix=os.path.join(tmp, name), model_type="bpe",
                        num_threads=1, input_sentence_size=0, shuffle_input_sentence=False,
                        minloglevel=2)
            if args.get("denormalization_rule_tsv") == "DENORM":
                args["denormalization_rule_tsv"] = denorm
            spm.SentencePieceTrainer.train(**args)
            shutil.copy(os.path.join(tmp, name + ".model"), dst)
            print("trained", dst, file=sys.stderr)
    finally:
        shutil.rmtree(tmp)


def main():
    texts = corpus_texts()
    for vocab, path in MODELS.items():
        generate(vocab, path, texts)
    if "--train" in sys.argv or not all(os.path.exists(os.path.join(VARIANTS_DIR, n + ".model")) for n in VARIANTS):
        train_variants(texts)
    for name, (settings, _) in VARIANTS.items():
        # The sweep checks a charsmap; sp1024's (nmt_nfkc) is swept already.
        own_charsmap = isinstance(settings, dict) and settings["normalization_rule_name"] not in ("nmt_nfkc", "identity")
        generate(0, os.path.join(VARIANTS_DIR, name + ".model"), texts, sweep=own_charsmap, docs=VARIANT_DOCS, tag=name)


if __name__ == "__main__":
    main()
