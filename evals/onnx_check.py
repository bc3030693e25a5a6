"""Measure ONNX Runtime paths for the embedding model against PyTorch.

Exports the packaged model's transformer to ONNX (fp32), quantises its matrix
products to int8 (weights per output channel with a reduced range,
activations per batch at run time), and encodes the same texts with PyTorch,
ONNX fp32 and ONNX int8. Prints seconds, the speed-up over PyTorch and the
cosine between each path's vectors and PyTorch's.

    python -m evals.onnx_check --texts ../shared/corpus/beir-scifact/corpus.jsonl

The int8 step needs the `onnx` package (`pip install onnx`); without it only
fp32 is measured. Nothing here changes the knowledge base: the product keeps
PyTorch because neither path was faster on the benchmark machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np

from kb.embedding import resolve_model_path

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_fp32(model, target: Path) -> None:
    """Export the transformer of a sentence-transformers model to ONNX."""
    import torch

    transformer = model[0].auto_model.eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.transformer(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            ).last_hidden_state

    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "vectors")}
    torch.onnx.export(
        TokenVectors(),
        tuple(sample[name] for name in INPUTS),
        str(target),
        input_names=list(INPUTS),
        output_names=["vectors"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )


def quantise_int8(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        op_types_to_quantize=["MatMul"],
    )


def onnx_encode(session, tokenizer, texts: list[str], batch_size: int) -> np.ndarray:
    """Mean-pool and normalise token vectors, as all-MiniLM-L6-v2's modules do."""
    batches = []
    for start in range(0, len(texts), batch_size):
        features = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            truncation=True,
            max_length=256,
            return_tensors="np",
        )
        inputs = {name: features[name].astype(np.int64) for name in INPUTS}
        hidden = session.run(None, inputs)[0]
        mask = inputs["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        batches.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(batches)


def main() -> None:
    import onnxruntime
    from sentence_transformers import SentenceTransformer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, required=True, help="BEIR corpus.jsonl")
    parser.add_argument("--count", type=int, default=300, help="texts to encode")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    with open(args.texts, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in islice(handle, args.count)]
    # Sorted by length, longest first, as the knowledge base sorts them to
    # keep padding small.
    texts = [f"{row.get('title', '')}\n{row['text']}" for row in rows]
    texts.sort(key=len, reverse=True)
    path, name = resolve_model_path("all-MiniLM-L6-v2")
    model = SentenceTransformer(str(path), device="cpu")
    model.encode(texts[:8])
    started = time.perf_counter()
    reference = model.encode(
        texts, batch_size=args.batch_size, normalize_embeddings=True
    )
    torch_s = time.perf_counter() - started
    print(f"{name}, {len(texts)} texts, {os.cpu_count()} cores")
    print("| path | seconds | speed-up | mean cosine | min cosine |")
    print("|---|---|---|---|---|")
    print(f"| PyTorch | {torch_s:.2f} | 1.00 | 1.0000 | 1.0000 |")

    with tempfile.TemporaryDirectory() as folder:
        paths = {"ONNX fp32": Path(folder) / "model.onnx"}
        export_fp32(model, paths["ONNX fp32"])
        try:
            quantise_int8(paths["ONNX fp32"], Path(folder) / "model-int8.onnx")
            paths["ONNX int8"] = Path(folder) / "model-int8.onnx"
        except ImportError:
            print("(int8 skipped: the onnx package is not installed)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        for label, onnx_path in paths.items():
            session = onnxruntime.InferenceSession(
                str(onnx_path), options, providers=["CPUExecutionProvider"]
            )
            onnx_encode(session, model.tokenizer, texts[:8], args.batch_size)
            started = time.perf_counter()
            vectors = onnx_encode(session, model.tokenizer, texts, args.batch_size)
            seconds = time.perf_counter() - started
            cosine = (vectors * reference).sum(axis=1)
            print(
                f"| {label} | {seconds:.2f} | {torch_s / seconds:.2f} "
                f"| {cosine.mean():.4f} | {cosine.min():.4f} |"
            )


if __name__ == "__main__":
    main()
