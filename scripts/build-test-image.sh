#!/usr/bin/env bash
# Builds the project's test image: an OCI image layout tar of one layer holding Debian's
# busybox-static (/bin/busybox and a symlink per applet), /etc/passwd and /etc/group, with
# Cmd ["sh"], a PATH and KEEL_TEST_IMAGE=busybox in its Env. No network: busybox comes from
# the installed package (scripts/install-test-deps.sh). The tar is reproducible (sorted
# entries, owner 0, mtime 0, gzip -n), so its digests only change with busybox.
#
#   scripts/build-test-image.sh OUT.tar [NAME...]     (default NAME docker.io/library/busybox:latest)
#   keel image import OUT.tar --data-dir D
#
# Each NAME becomes an index.json entry with the io.containerd.image.name annotation, which
# keel's image store and `ctr images import` both read.
set -euo pipefail

out=${1:?usage: build-test-image.sh OUT.tar [NAME...]}
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(docker.io/library/busybox:latest)
busybox=$(command -v busybox || true)
# A static busybox is what runs in an image of nothing else (ldd fails on a static binary).
if [ -z "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
    echo "build-test-image: a static busybox is needed: apt-get install busybox-static" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,root,tmp,var/www} "$work"/oci/blobs/sha256
chmod 1777 "$rootfs/tmp"
cp "$busybox" "$rootfs/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"$rootfs/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$rootfs/etc/group"
echo 'keel test image' >"$rootfs/var/www/index.html"

# blob FILE: moves FILE into the layout under its digest; prints "DIGEST SIZE".
blob() {
    local hex size
    hex=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    mv "$1" "$work/oci/blobs/sha256/$hex"
    echo "sha256:$hex $size"
}

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu \
    -C "$rootfs" -cf "$work/layer.tar" .
diff_id=sha256:$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 "$work/layer.tar"
read -r layer_digest layer_size < <(blob "$work/layer.tar.gz")

arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
cat >"$work/config.json" <<EOF
{"architecture":"$arch","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","KEEL_TEST_IMAGE=busybox"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["$diff_id"]}}
EOF
read -r config_digest config_size < <(blob "$work/config.json")

cat >"$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$config_digest","size":$config_size},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"$layer_digest","size":$layer_size}]}
EOF
read -r manifest_digest manifest_size < <(blob "$work/manifest.json")

entries=()
for name in "${names[@]}"; do
    entries+=("{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$manifest_digest\",\"size\":$manifest_size,\"annotations\":{\"io.containerd.image.name\":\"$name\"}}")
done
(IFS=,; echo "{\"schemaVersion\":2,\"manifests\":[${entries[*]}]}") >"$work/oci/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"

mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/oci" -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out: ${names[*]} ($manifest_digest)"
