"""A tiny but real Argos Translate package, built offline for tests and benchmarks.

Random weights (one layer, d=16) in a real CTranslate2 model directory, a real
trained SentencePiece model, ``metadata.json``, zipped as ``.argosmodel`` the way
published packages are. Translations are nonsense but deterministic, so tests can
exercise the real install, load, tokenise, decode path.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import sentencepiece as spm
from ctranslate2.specs import model_spec, transformer_spec

NAMES = {"ko": "Korean", "en": "English", "ja": "Japanese", "zh": "Chinese", "ru": "Russian"}

CORPUS = [
    "안녕하세요 저는 일본에 살고 있습니다",
    "가족관계증명서를 발급받고 싶습니다",
    "국적 상실 신고는 어떻게 하나요",
    "병역 의무에 대해 상담하고 싶어요",
    "재외국민등록을 하려면 무엇이 필요한가요",
    "Hello, I live in Japan and want a certificate.",
    "How do I report the loss of nationality?",
    "I would like to ask about military service.",
    "こんにちは、日本に住んでいます。",
    "家族関係証明書を発行したいです。",
    "国籍について相談したいです。",
    "你好，我住在日本。我想咨询国籍问题。",
    "Здравствуйте, я живу в Японии и хочу получить справку.",
    "0123456789 .,?!-",
]


def _sentencepiece_model(vocab_size: int) -> tuple[bytes, list[str]]:
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4),
        model_writer=buffer,
        vocab_size=vocab_size,
        character_coverage=1.0,
        model_type="unigram",
        hard_vocab_limit=False,
        byte_fallback=True,
        minloglevel=2,
    )
    model = buffer.getvalue()
    processor = spm.SentencePieceProcessor(model_proto=model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    return model, pieces


def _fill(spec: model_spec.LayerSpec, rng: np.random.Generator, vocab: int, d: int) -> None:
    ffn = 2 * d
    shapes = {
        "self_attention/linear_0": (3 * d, d),
        "attention/linear_0": (d, d),
        "attention/linear_1": (2 * d, d),
        "ffn/linear_0": (ffn, d),
        "ffn/linear_1": (d, ffn),
    }

    def visit(obj: model_spec.LayerSpec, prefix: str) -> None:
        for key, value in vars(obj).items():
            if key.startswith("_"):
                continue
            name = f"{prefix}{key}"
            if isinstance(value, model_spec.LayerSpec):
                visit(value, name + "/")
            elif isinstance(value, list) and value and isinstance(value[0], model_spec.LayerSpec):
                for i, item in enumerate(value):
                    visit(item, f"{name}_{i}/")
            elif value is None:
                setattr(obj, key, _weight(name, key))

    def _weight(name: str, key: str) -> np.ndarray:
        if key in ("gamma", "beta"):
            return (np.ones if key == "gamma" else np.zeros)(d, dtype=np.float32)
        if "embeddings" in name or "projection" in name:
            return rng.normal(0, 1, (vocab, d)).astype(np.float32)
        for suffix, shape in shapes.items():
            if name.endswith(suffix + "/weight"):
                return rng.normal(0, 0.3, shape).astype(np.float32)
        return rng.normal(0, 0.3, (d, d)).astype(np.float32)

    visit(spec, "")


def build_argos_package(
    dest: Path, from_code: str, to_code: str, *, seed: int = 0, vocab_size: int = 500
) -> Path:
    """Write ``translate-{from}_{to}.argosmodel`` into ``dest`` and return its path."""
    rng = np.random.default_rng(seed)
    sp_model, pieces = _sentencepiece_model(vocab_size)
    d = 16
    spec = transformer_spec.TransformerSpec.from_config(1, 2)
    _fill(spec, rng, len(pieces), d)
    # bias towards </s> so that random decoders stop after a few tokens
    bias = np.zeros(len(pieces), dtype=np.float32)
    bias[pieces.index("</s>")] = 6.0
    # and away from byte-fallback pieces, so output is readable text
    for i, piece in enumerate(pieces):
        if piece.startswith("<0x"):
            bias[i] = -30.0
    spec.decoder.projection.bias = bias
    spec.register_source_vocabulary(pieces)
    spec.register_target_vocabulary(pieces)
    spec.validate()

    name = f"translate-{from_code}_{to_code}"
    work = Path(tempfile.mkdtemp(prefix=name, dir=dest))
    (work / "model").mkdir()
    spec.save(str(work / "model"))
    metadata = {
        "type": "translate",
        "package_version": "0.1",
        "argos_version": "1.9",
        "from_code": from_code,
        "from_name": NAMES.get(from_code, from_code),
        "to_code": to_code,
        "to_name": NAMES.get(to_code, to_code),
    }
    archive = dest / (name + ".argosmodel")
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{name}/metadata.json", json.dumps(metadata))
        zf.writestr(f"{name}/sentencepiece.model", sp_model)
        for path in sorted((work / "model").iterdir()):
            zf.write(path, f"{name}/model/{path.name}")
    shutil.rmtree(work)
    return archive
