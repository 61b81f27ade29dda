#!/usr/bin/env python3
"""The llm.c peer of `usine bench train`: the same GPT-2 and batch in llm.c's own trainer.

llm.c (github.com/karpathy/llm.c) is not part of usine: --llmc names a checkout of it.
- cpu: builds its train_gpt2.c (f32, OpenMP) as its Makefile does (-Ofast -march=native
  -fopenmp), its fixed main() first pointed at this run: B, T, the checkpoint, the token file,
  the step count, usine's AdamW settings, no validation passes. Its step has no clipping.
- CUDA: builds train_gpt2.cu (bf16, f32 master weights, no NCCL or MPI, its own attention
  kernels: cuDNN's needs cudnn-frontend) and passes the same through its flags; or, with
  --build OUT, only builds it, for a GPU machine without nvcc's libraries, whose --llmc is then
  that file.
A step is theirs: forward, backward, AdamW (lr 3e-4, betas 0.9 and 0.95, weight decay 0.1), on
one rank, on one batch of random ids read again at every step, as usine's bench does.

The model has GPT-2's initialisation (normal 0.02, the projections into the residual stream
0.02 / sqrt(2 L), zero biases, unit LayerNorm scales), the vocabulary padded to a multiple of
128: on CUDA, for GPT-2's own shapes, llm.c draws it itself (-e dL); otherwise this script
writes it in llm.c's checkpoint format (f32 on the cpu, bf16 on CUDA; that needs numpy).

Prints one JSON object: tokens_per_s (median step after the warm-up), step_ms (median), loss
(last), and what ran. Usage: llmc_gpt_train.py --llmc ~/llm.c --layers 4 --heads 4 --embd 256
--vocab 50257 --block 1024 --batch 4 --seq 256 --steps 5 --warmup 2 --device cpu --threads 2
"""
import argparse
import array
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:  # write_checkpoint says so; the CUDA trainer may not need it
    np = None

CHECKPOINT_MAGIC = 20240326
TOKENS_MAGIC = 20240520


def fail(message):
    sys.exit("llmc_gpt_train.py: " + message)


def write_checkpoint(path, a, bf16):
    """GPT-2 at initialisation in llm.c's checkpoint format (version 3: f32, 5: bf16)."""
    if np is None:
        fail(f"{sys.executable} has no numpy (python3-numpy), which writes llm.c's checkpoint")
    c, layers, padded = a.embd, a.layers, (a.vocab + 127) // 128 * 128
    header = np.zeros(256, dtype=np.int32)
    header[:8] = [CHECKPOINT_MAGIC, 5 if bf16 else 3, a.block, a.vocab, layers, a.heads, c, padded]
    rng = np.random.default_rng(a.seed)
    proj_std = 0.02 / np.sqrt(2 * layers)
    # llm.c's order (fill_in_parameter_sizes), each array stacked over the layers: a float is
    # the standard deviation of a normal draw.
    arrays = [((padded, c), 0.02), ((a.block, c), 0.02),                    # wte, wpe
              ((layers, c), "ones"), ((layers, c), "zeros"),                # ln_1
              ((layers, 3 * c, c), 0.02), ((layers, 3 * c), "zeros"),       # c_attn
              ((layers, c, c), proj_std), ((layers, c), "zeros"),           # attn.c_proj
              ((layers, c), "ones"), ((layers, c), "zeros"),                # ln_2
              ((layers, 4 * c, c), 0.02), ((layers, 4 * c), "zeros"),       # c_fc
              ((layers, c, 4 * c), proj_std), ((layers, c), "zeros"),       # mlp.c_proj
              ((c,), "ones"), ((c,), "zeros")]                              # ln_f
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for i, (shape, init) in enumerate(arrays):
            if init == "ones":
                x = np.ones(shape, dtype=np.float32)
            elif init == "zeros":
                x = np.zeros(shape, dtype=np.float32)
            else:
                x = rng.normal(0.0, init, size=shape).astype(np.float32)
            if i == 0:
                x[a.vocab:] = 0.0  # wte's padding rows
            if bf16:  # rounded to nearest even
                bits = x.view(np.uint32).astype(np.uint64)
                x = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
            f.write(x.tobytes())


def write_tokens(path, a, count):
    """`count` random ids in llm.c's token-file format (uint16 after a 256-int header)."""
    draw = random.Random(a.seed + 1)
    header = array.array("i", [TOKENS_MAGIC, 1, count] + [0] * 253)
    tokens = array.array("H", (draw.randrange(a.vocab) for _ in range(count)))
    if sys.byteorder != "little":
        header.byteswap()
        tokens.byteswap()
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.tobytes())


# llm.c's CUDA trainer builds these GPT-2 shapes itself from a descriptor, dL (its
# gpt2_set_hyperparameters): depth -> (heads, width), vocabulary 50257, context 1024.
LLMC_DEPTHS = {6: (6, 384), 12: (12, 768), 24: (16, 1024), 36: (20, 1280), 48: (25, 1600)}


def cuda_model(a, work):
    """What the CUDA trainer's -e takes: a descriptor where llm.c builds the shape itself with
    GPT-2's initialisation, else a bf16 checkpoint written here."""
    if LLMC_DEPTHS.get(a.layers) == (a.heads, a.embd) and (a.vocab, a.block) == (50257, 1024):
        return f"d{a.layers}"
    path = os.path.join(work, "model.bin")
    write_checkpoint(path, a, bf16=True)
    return path


def patched_cpu_main(source, a, work):
    """train_gpt2.c with its main() pointed at this run; each edit must match exactly once."""
    edits = [
        (r'gpt2_build_from_checkpoint\(&model, "gpt2_124M\.bin"\);',
         f'gpt2_build_from_checkpoint(&model, "{work}/model.bin");'),
        (r'const char\* train_tokens = [^\n]*;', f'const char* train_tokens = "{work}/tokens.bin";'),
        (r'const char\* val_tokens = [^\n]*;', f'const char* val_tokens = "{work}/tokens.bin";'),
        (r'int B = 4;', f'int B = {a.batch};'),
        (r'int T = 64;', f'int T = {a.seq};'),
        (r'for \(int step = 0; step <= 40; step\+\+\)',
         f'for (int step = 0; step < {a.warmup + a.steps}; step++)'),
        (r'if \(step % 10 == 0\) \{', 'if (0) {'),  # no validation passes
        (r'if \(step > 0 && step % 20 == 0\) \{', 'if (0) {'),  # no sampling
        # usine's recipe: lr 3e-4, betas 0.9 and 0.95, weight decay 0.1 (on every parameter
        # here: the cpu trainer has no groups).
        (r'gpt2_update\(&model, 1e-4f, 0\.9f, 0\.999f, 1e-8f, 0\.0f, step\+1\);',
         'gpt2_update(&model, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step+1);'),
    ]
    for pattern, replacement in edits:
        source, count = re.subn(pattern, lambda _: replacement, source)
        if count != 1:
            fail(f"train_gpt2.c: expected one `{pattern}`, found {count} (another llm.c version?)")
    return source


def cuda13_tree(llmc, work):
    """llm.c's CUDA sources in work/src, their one call CUDA 13 changed made in its new form:
    cudaMemAdvise takes a cudaMemLocation (in the out-of-memory fallback, which the bench never
    takes). Returns train_gpt2.cu's path there."""
    src = os.path.join(work, "src")
    shutil.copytree(os.path.join(llmc, "llmc"), os.path.join(src, "llmc"))
    shutil.copy(os.path.join(llmc, "train_gpt2.cu"), src)
    utils = os.path.join(src, "llmc", "cuda_utils.cuh")
    with open(utils) as f:
        text = f.read()
    old = ("cudaCheck_(cudaMemAdvise(*out, bytes, cudaMemAdviseSetPreferredLocation, "
           "cudaCpuDeviceId), file, line);")
    new = ("\n#if CUDART_VERSION >= 13000\n"
           "cudaCheck_(cudaMemAdvise(*out, bytes, cudaMemAdviseSetPreferredLocation, "
           "cudaMemLocation{cudaMemLocationTypeHost, 0}), file, line);\n#else\n"
           f"{old}\n#endif\n")
    if text.count(old) > 1:
        fail(f"{utils}: expected the cudaMemAdvise call at most once")
    with open(utils, "w") as f:  # unchanged where a newer llm.c has the new form already
        f.write(text.replace(old, new))
    return os.path.join(src, "train_gpt2.cu")


def build_cuda_trainer(a, work, binary):
    """Compiles llm.c's train_gpt2.cu as its Makefile does (bf16, no NCCL or MPI) into binary.
    llm.c uses NVML (GPU clocks and power in its log) only where the toolkit has nvml.h; then
    it links against NVML, through the toolkit's stub on a machine without a driver."""
    source = cuda13_tree(a.llmc, work)
    toolkit = os.path.dirname(os.path.dirname(os.path.realpath(shutil.which(a.nvcc) or a.nvcc)))
    roots = [toolkit, os.path.join(toolkit, "targets", "x86_64-linux")]
    nvml = [f"-L{os.path.join(r, d)}" for r in roots for d in ("lib64/stubs", "lib/stubs")
            if os.path.isdir(os.path.join(r, d))] + ["-lnvidia-ml"]
    if not any(os.path.isfile(os.path.join(r, "include", "nvml.h")) for r in roots):
        nvml = []
    run([a.nvcc, "--threads=0", "--use_fast_math", "-std=c++17", "-O3",
         f"--generate-code=arch=compute_{a.arch},code=sm_{a.arch}", "-DENABLE_BF16", source,
         "-lcublas", "-lcublasLt", *nvml, "-o", binary])


def run(command, env=None, cwd=None):
    try:
        result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    except OSError as e:
        fail(f"cannot run `{command[0]}`: {e}")
    if result.returncode != 0:
        fail(f"`{' '.join(command)}` exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


def commit_of(llmc):
    """The checkout's commit; for a trainer built by --build, the one recorded beside it."""
    if os.path.isfile(llmc + ".commit"):
        with open(llmc + ".commit") as f:
            return f.read().strip()
    try:
        return subprocess.run(["git", "-C", llmc, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llmc", required=True,
                    help="an llm.c checkout or, on CUDA, a trainer built by --build")
    ap.add_argument("--build", metavar="OUT",
                    help="only build llm.c's CUDA trainer into OUT (on a machine with nvcc and "
                         "cuBLAS, for a GPU machine without them)")
    for name, default in [("layers", 12), ("heads", 12), ("embd", 768), ("vocab", 50257),
                          ("block", 1024), ("batch", 4), ("seq", 256), ("steps", 10),
                          ("warmup", 3), ("threads", 0), ("seed", 1337)]:
        ap.add_argument("--" + name, type=int, default=default)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--cc", default="cc", help="the C compiler of the cpu trainer")
    ap.add_argument("--nvcc", default="nvcc", help="the CUDA compiler of the CUDA trainer")
    ap.add_argument("--arch", default="90", help="the CUDA trainer's compute capability")
    a = ap.parse_args()
    cuda = a.device == "cuda" or a.build
    prebuilt = cuda and os.path.isfile(a.llmc) and os.access(a.llmc, os.X_OK)
    source = os.path.join(a.llmc, "train_gpt2.cu" if cuda else "train_gpt2.c")
    if not prebuilt and not os.path.isfile(source):
        fail(f"--llmc {a.llmc}: no {os.path.basename(source)} there (an llm.c checkout?)")
    if a.build:
        if prebuilt:
            fail("--build needs an llm.c checkout as --llmc")
        with tempfile.TemporaryDirectory(prefix="usine-llmc-") as work:
            build_cuda_trainer(a, work, a.build)
        with open(a.build + ".commit", "w") as f:
            f.write(commit_of(a.llmc) + "\n")
        print(f"llmc_gpt_train.py: llm.c's train_gpt2.cu built into {a.build}")
        return
    if a.seq > a.block:
        fail(f"--seq {a.seq} is longer than --block {a.block}")
    if cuda and a.seq % 4 != 0:
        fail(f"--seq {a.seq}: llm.c's CUDA attention needs a multiple of 4")

    with tempfile.TemporaryDirectory(prefix="usine-llmc-") as work:
        # One batch, read again at every step (llm.c's loader starts its one shard over), as
        # usine's bench and the PyTorch peer train on one batch.
        write_tokens(os.path.join(work, "tokens.bin"), a, a.batch * a.seq + 1)
        binary = os.path.join(work, "train")
        env = dict(os.environ)
        if cuda:
            if prebuilt:
                binary = a.llmc
            else:
                build_cuda_trainer(a, work, binary)
            tokens = os.path.join(work, "tokens.bin")
            command = [binary, "-e", cuda_model(a, work), "-i", tokens, "-j", tokens,
                       "-b", str(a.batch), "-t", str(a.seq), "-x", str(a.warmup + a.steps),
                       "-v", "1000000", "-m", "1", "-s", "0", "-l", "3e-4", "-c", "0.1"]
            step = re.compile(r"step\s+\d+/\d+ \| loss ([0-9.]+).*\| ([0-9.]+) ms \|")
            recipe = "train_gpt2.cu, bf16, f32 master weights, its own attention"
        else:
            write_checkpoint(os.path.join(work, "model.bin"), a, bf16=False)
            with open(source) as f:
                main_source = patched_cpu_main(f.read(), a, work)
            patched = os.path.join(work, "train_gpt2.c")
            with open(patched, "w") as f:
                f.write(main_source)
            run([a.cc, "-Ofast", "-march=native", "-fopenmp", "-DOMP", "-Wno-unused-result",
                 "-I", a.llmc, patched, "-lm", "-o", binary])
            if a.threads > 0:
                env["OMP_NUM_THREADS"] = str(a.threads)
            command = [binary]
            step = re.compile(r"step \d+: train loss ([0-9.]+) \(took ([0-9.]+) ms\)")
            recipe = f"train_gpt2.c, f32, OpenMP, {a.cc} -Ofast -march=native"
        output = run(command, env=env, cwd=work)

    steps = [(float(m.group(1)), float(m.group(2))) for m in step.finditer(output)]
    if len(steps) != a.warmup + a.steps:
        fail(f"expected {a.warmup + a.steps} step lines from llm.c, found {len(steps)}:\n{output}")
    step_ms = statistics.median(ms for _, ms in steps[a.warmup:])
    print(json.dumps({
        "tokens_per_s": a.batch * a.seq / (step_ms / 1e3),
        "step_ms": step_ms,
        "loss": steps[-1][0],
        "recipe": recipe,
        "llmc": commit_of(a.llmc),
        "threads": a.threads if a.threads > 0 else os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
