#!/bin/sh
# Write DIR/kustomization.yaml: a tree of your own that deploys OVERLAY (default: the base) with
# every scoring-bench image named as compose names it, ${IMAGE_PREFIX}-<service>:${IMAGE_TAG}
# (defaults scoring-bench and latest: the names `make docker-build` gives them). The same two
# variables name the images for compose and for Kubernetes.
#
# usage: IMAGE_PREFIX=registry.example/team/scoring-bench IMAGE_TAG=v1 \
#            sh deploy/kubernetes/with-images.sh DIR [OVERLAY]
#        kubectl apply -k DIR
set -eu
dir=${1:?usage: with-images.sh DIR [OVERLAY]}
here=$(cd "$(dirname "$0")" && pwd)
overlay=${2:-$here/base}
prefix=${IMAGE_PREFIX:-scoring-bench}
tag=${IMAGE_TAG:-latest}
mkdir -p "$dir"
{
    echo "# made by deploy/kubernetes/with-images.sh (IMAGE_PREFIX=$prefix IMAGE_TAG=$tag)"
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - $(realpath --relative-to="$dir" "$overlay")"
    echo "images:"
    # the base's list of images (base/kustomization.yaml), each renamed
    sed -n 's/^  - name: scoring-bench-\(.*\)$/\1/p' "$here/base/kustomization.yaml" | while read -r service; do
        echo "  - name: scoring-bench-$service"
        echo "    newName: $prefix-$service"
        echo "    newTag: \"$tag\""
    done
} >"$dir/kustomization.yaml"
echo "wrote $dir/kustomization.yaml: kubectl apply -k $dir"
