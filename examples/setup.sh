#!/bin/sh
# Make the project the example specs name (examples/README.md):
#   - dataset "fashion-mnist": Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist,
#     60 000 + 10 000 images) when installed, else the subset embedded in NMLab
#     (resources/demo/fashion-mnist, 6 000 + 1 000 images);
#   - backbone "tiny-resnet": the small ONNX ResNet of test/fixtures/onnx (1×16×16 input,
#     16 features), imported with its preprocessing.
# Usage: sh examples/setup.sh DIR        (NMLAB overrides the command, default: node bin/nmlab.mjs)
set -eu
dir=${1:?usage: sh examples/setup.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
nmlab=${NMLAB:-node $root/bin/nmlab.mjs}
debian=/usr/share/datasets/fashion-mnist
if [ -f "$debian/train-images-idx3-ubyte.gz" ]; then data=$debian; what="Debian's dataset-fashion-mnist"; else data=$root/resources/demo/fashion-mnist; what="the embedded subset"; fi
[ -f "$dir/nmlab.json" ] || $nmlab project create "$dir" --name "NMLab examples"
if ! $nmlab dataset show --project "$dir" --dataset fashion-mnist >/dev/null 2>&1; then
  echo "importing Fashion-MNIST from $what ($data)"
  $nmlab dataset import --project "$dir" --name "Fashion-MNIST" --id fashion-mnist \
    --idx-images "$data/train-images-idx3-ubyte.gz" --idx-labels "$data/train-labels-idx1-ubyte.gz" \
    --idx-test-images "$data/t10k-images-idx3-ubyte.gz" --idx-test-labels "$data/t10k-labels-idx1-ubyte.gz"
fi
if [ ! -f "$dir/backbones/tiny-resnet/backbone.json" ]; then
  $nmlab project import-backbone "$dir" "$root/test/fixtures/onnx/tiny_resnet.onnx" --id tiny-resnet --size 16 --channels 1 --mean 0.5 --std 0.25
fi
echo "ready: nmlab run examples/<name>.yaml --project $dir"
