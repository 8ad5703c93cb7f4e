#!/usr/bin/env bash
# Regenerate the files behind the README's results tables: train the runs (into runs/, which git
# ignores), evaluate them on the whole test split, and write the small JSON files in results/.
# Then `python results/tables.py --write README.md` puts the tables into the README.
#
#     bash results/regenerate.sh TABLE [TABLE ...]      TABLE: burda two_layer vq flows_mnist flows2d
#
# Budgets (measured on a 2-core machine, one BLAS thread, other work beside it): burda 35 min of
# training and 4 x 8 min of evaluation; two_layer (after burda) about 1 h 40 min of
# training and 6 x 10-20 min of evaluation; vq 25 min of training, 2 min for the prior and 20 min
# of evaluation; flows_mnist about 1 h of training and 9 x 4 min of evaluation (on a seeded random
# 2000 of the test images); flows2d 4 min. MNIST and binarized MNIST are read from $DATA
# (default ../shared/data), e.g. DATA=~/data bash results/regenerate.sh burda.
# The runs behind the committed tables were trained on one thread (OPENBLAS_NUM_THREADS=1, train
# --threads 1); another thread count sums the matrix products in another order, so its digits
# differ (not its statistics).
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
DATA=${DATA:-../shared/data}
M=$DATA/mnist
B=$DATA/binarized_mnist
vae() { python -m vae_np "$@"; }
train() { [ -e "${@: -1}/checkpoint.npz" ] || vae train -q --no-figures --threads 1 "$@"; }  # last: --out DIR
resume() { vae train -q --no-figures --resume "$1" --epochs "$2"; }
evaluate() {   # RUN OUT [OPTIONS]: evaluate RUN (whole test split unless --limit) into OUT.json/.npz
  local run=$1 out=$2; shift 2
  vae evaluate "$run" -q --json --per-example "$out.npz" "$@" > "$out.json.tmp" && mv "$out.json.tmp" "$out.json"
}
pair() {       # A B KEY OUT: the paired difference B - A of KEY, image by image
  python results/tables.py pair "$1.npz" "$2.npz" "$3" > "$4.tmp" && mv "$4.tmp" "$4"
}

burda() {      # Burda et al. (2016), Table 1, one stochastic layer, the first 40 passes
  mkdir -p results/burda
  for spec in "vae_k1 1 elbo" "vae_k5 5 elbo" "iwae_k5 5 iwae" "iwae_k50 50 iwae"; do
    set -- $spec
    train --preset iwae-vae --data-dir "$M" --passes 40 --k "$2" --objective "$3" --out "runs/burda/$1"
    evaluate "runs/burda/$1" "runs/burda/$1-eval"
    cp "runs/burda/$1-eval.json" "results/burda/$1.json"
  done
  for name in vae_k5 iwae_k5 iwae_k50; do
    pair runs/burda/vae_k1-eval "runs/burda/$name-eval" iwae_nll "results/burda/$name-vs-vae_k1.json"
  done
}

two_layer() {   # Burda et al. (2016), Table 1, two layers; the VampPrior; warm-up (needs burda)
  mkdir -p results/two_layer
  local T=runs/two_layer
  [ -e runs/burda/vae_k1-eval.npz ] || burda
  train --preset iwae-2layer --data-dir "$M" --passes 40 --k 5 --objective iwae --out $T/iwae2_k5
  train --preset iwae-2layer --data-dir "$M" --passes 40 --k 1 --objective elbo --out $T/vae2_k1
  train --preset iwae-2layer --data-dir "$M" --passes 40 --k 1 --objective elbo \
    --warmup-epochs 10 --out $T/vae2_k1_warmup
  # the VampPrior with warm-up, as Tomczak & Welling train it: without, this run's KL was 0.00 from
  # the first pass on (the posterior collapsed onto the prior; test -ELBO 206 at pass 11)
  train --preset iwae-vae --data-dir "$M" --passes 40 --k 1 --objective elbo --prior vamp \
    --pseudo-inputs 500 --warmup-epochs 10 --out $T/vamp1_k1
  for name in iwae2_k5 vae2_k1 vae2_k1_warmup vamp1_k1; do
    evaluate $T/$name "$T/$name-eval@40"
    cp "$T/$name-eval@40.json" "results/two_layer/$name@40.json"
  done
  # the IWAE k = 5 pair carried on through Burda's stages 3 and 4 (to 121 passes)
  [ -e $T/iwae1_k5 ] || cp -r runs/burda/iwae_k5 $T/iwae1_k5
  for name in iwae1_k5 iwae2_k5; do
    resume $T/$name 121
    evaluate $T/$name "$T/$name-eval@121"
    cp "$T/$name-eval@121.json" "results/two_layer/$name@121.json"
  done
  pair runs/burda/vae_k1-eval $T/vae2_k1-eval@40 iwae_nll "results/two_layer/vae2_k1@40-vs-burda_vae_k1.json"
  pair runs/burda/iwae_k5-eval $T/iwae2_k5-eval@40 iwae_nll "results/two_layer/iwae2_k5@40-vs-burda_iwae_k5.json"
  pair runs/burda/vae_k1-eval $T/vamp1_k1-eval@40 iwae_nll "results/two_layer/vamp1_k1@40-vs-burda_vae_k1.json"
  pair $T/vae2_k1-eval@40 $T/vae2_k1_warmup-eval@40 iwae_nll \
    "results/two_layer/vae2_k1_warmup@40-vs-two_layer_vae2_k1@40.json"
  pair $T/iwae1_k5-eval@121 $T/iwae2_k5-eval@121 iwae_nll \
    "results/two_layer/iwae2_k5@121-vs-two_layer_iwae1_k5@121.json"
}
vq() {         # the VQ-VAE with its learned prior beside a Gaussian VAE of the same size
  mkdir -p results/vq
  train --model vqvae --dataset binarized-mnist --data-dir "$B" --hidden 400 --n-latents 16 \
    --code-dim 8 --codebook-size 128 --codebook-update ema --epochs 40 --out runs/vq/vqvae
  [ -e runs/vq/vqvae/prior.npz ] || vae fit-prior runs/vq/vqvae --epochs 12 -q --no-figures
  train --dataset binarized-mnist --data-dir "$B" --hidden 400 --z-dim 16 --batch-size 128 \
    --epochs 40 --out runs/vq/vae16
  evaluate runs/vq/vqvae runs/vq/vqvae-eval
  evaluate runs/vq/vae16 runs/vq/vae16-eval
  cp runs/vq/vqvae-eval.json results/vq/vqvae.json
  cp runs/vq/vae16-eval.json results/vq/vae16.json
  cp runs/vq/vqvae/history.csv results/vq/vqvae_history.csv
  cp runs/vq/vqvae/prior.json results/vq/prior.json
}

flows_mnist() {   # flow posteriors at 5, 10 and 30 passes, resumed from one run each
  mkdir -p results/flows_mnist
  for spec in "diagonal" "planar10 --flow planar --flow-length 10" \
              "planar40 --flow planar --flow-length 40"; do
    set -- $spec
    name=$1; shift
    run=runs/flows_mnist/$name
    train --dataset dynamic-mnist --data-dir "$M" --hidden 400 --z-dim 40 --batch-size 100 \
      "$@" --epochs 5 --out "$run"
    for passes in 5 10 30; do
      [ "$passes" = 5 ] || resume "$run" "$passes"
      # a seeded random 2000 of the 10,000 test images (the same 2000 for every run: --seed 0)
      evaluate "$run" "$run-eval@$passes" --limit 2000 --seed 0
      cp "$run-eval@$passes.json" "results/flows_mnist/$name@$passes.json"
    done
  done
  for passes in 5 10 30; do
    for name in planar10 planar40; do
      pair "runs/flows_mnist/diagonal-eval@$passes" "runs/flows_mnist/$name-eval@$passes" \
        iwae_nll "results/flows_mnist/$name@$passes-vs-diagonal.json"
    done
  done
}
flows2d() {    # Rezende & Mohamed (2015), Figure 3: KL of 2-D flows fitted to U1-U4
  mkdir -p results/flows2d
  vae flows --out runs/flows2d -q
  cp runs/flows2d/kl_table.json results/flows2d/kl_table.json
}

[ $# -gt 0 ] || { echo "usage: bash results/regenerate.sh {burda|two_layer|vq|flows_mnist|flows2d} ..." >&2; exit 2; }
for table in "$@"; do
  case $table in
    burda|two_layer|vq|flows_mnist|flows2d) "$table" ;;
    *) echo "unknown table $table (burda, two_layer, vq, flows_mnist, flows2d)" >&2; exit 2 ;;
  esac
done
