#!/usr/bin/env bash
# Transfer experiment (He et al. 2022's question): does a diff model trained on editlm's SYNTHETIC
# bugs fix REAL ones? Train on synthetic bug-fix samples from standard-library functions, then score
# the same model on the synthetic bug-fix benchmark (same distribution), on HumanEvalFix (bugs people
# wrote into HumanEval solutions) and on QuixBugs (one-line bugs in classic algorithms); the report
# puts the three side by side, with the published HumanEvalFix row.
#
#   bash recipes/transfer.sh              # SIZE=cpu: a tiny model, minutes on 2 cores (numbers near 0)
#   SIZE=gpu bash recipes/transfer.sh     # the same stages at the size where the question is answered:
#                                         # ~150M Llama-shaped model (pretrain-tinycodelm-150m), 50k
#                                         # programs, 1 GPU with >= 24 GB, a few hours
#   OUT=runs/transfer N=10 ...            # where it writes; samples per problem
#
# Every stage resumes: rerun the script after an interruption. Training data is decontaminated
# against every registered benchmark (HumanEval, HumanEvalFix, QuixBugs, EditEval, 4-Parity).
set -euo pipefail
SIZE=${SIZE:-cpu}
OUT=${OUT:-runs/transfer-$SIZE}
EDITLM=${EDITLM:-editlm}
mkdir -p "$OUT"

if [ "$SIZE" = gpu ]; then
  PROGRAMS=50000; N=${N:-20}; ENGINE=vllm
  PRETRAIN=(-r pretrain-tinycodelm-150m)
  SFT=(-r sft-diff --set seq_len=2048)
else
  PROGRAMS=2000; N=${N:-5}; ENGINE=ctranslate2
  PRETRAIN=(-r pretrain-tiny --max-steps 400 --seq-len 256)
  SFT=(-r sft-diff --max-steps 600 --seq-len 512 --batch-size 8 --lr 1e-3 --set grad_accum=1 --set warmup_steps=30)
fi

# data: generic programs -> synthetic bugs of every class (1-3 bugs per sample), decontaminated
[ -e "$OUT/corpus.jsonl" ] || $EDITLM data corpus -o "$OUT/corpus.jsonl" --limit "$PROGRAMS"
$EDITLM bugs "$OUT/corpus.jsonl" -o "$OUT/bugs.parquet" --bugs 1-3 --per-program 2 --message "Fix bug"
[ -e "$OUT/tok/tokenizer.json" ] || $EDITLM train tokenizer "$OUT/corpus.jsonl" -o "$OUT/tok" --vocab-size 8192 --text-field program

# models: code LM first (so it can copy lines), then loss from <DFF> on the bug-fix diffs
$EDITLM train pretrain "${PRETRAIN[@]}" -t "$OUT/tok" -d "$OUT/corpus.jsonl" --set text_field=program -o "$OUT/base"
$EDITLM train sft "${SFT[@]}" -m "$OUT/base" -d "$OUT/bugs.parquet" -o "$OUT/diff" --decontaminate

# the synthetic benchmark is built from HumanEval's solutions (editlm bugfix-benchmark, sandboxed)
[ -e "$OUT/bugfix.jsonl" ] || $EDITLM bugfix-benchmark -o "$OUT/bugfix.jsonl"
export EDITLM_BUGFIX_BENCHMARK="$OUT/bugfix.jsonl"

# generation and evaluation: the same model, the same prompt format, three benchmarks
for bench in bugfix humanevalfix quixbugs; do
  $EDITLM generate "$OUT/diff" -b "$bench" --kind diff -n "$N" -o "$OUT/samples-$bench.jsonl" \
    --engine "$ENGINE" --temperature 0.8
  $EDITLM evaluate "$OUT/samples-$bench.jsonl" -b "$bench" -o "$OUT/eval/$bench" -k 1,5 --metrics
done
$EDITLM report "$OUT/eval" -o "$OUT"
echo "report: $OUT/report.md"
