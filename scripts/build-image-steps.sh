#!/usr/bin/env bash
# The build steps of the sluice image (Dockerfile), kept in one place so the image and this
# machine run the same cargo command. The Dockerfile copies this script in and calls it; run it
# here with no arguments to mirror the image build without a container engine.
#
#   scripts/build-image-steps.sh                 mirror the image build here: check the
#                                                dependency skeleton, then the release build
#   scripts/build-image-steps.sh --skeleton-only only the skeleton check (fast, no compile)
#   scripts/build-image-steps.sh skeleton DEST   write the dependency skeleton to DEST
#   scripts/build-image-steps.sh deps            build dependencies in a skeleton (image step 1)
#   scripts/build-image-steps.sh release OUT     real sources: build and install sluice in OUT
#   scripts/build-image-steps.sh print-command   print the cargo command and exit
#
# The skeleton is what makes the image's dependency layer cacheable: every workspace manifest,
# Cargo.lock, cargo and toolchain config, and a stub for every target root (lib, bin, bench,
# test, example, build script). It changes only when a manifest, the lockfile or the set of
# targets changes, so Docker reuses the compiled-dependency layer across source edits.
set -euo pipefail

# The one cargo command of the image build: release profile, default features, the locked
# lockfile, only the `sluice` binary package.
CARGO_BUILD=(cargo build --release --locked -p sluice)
BIN=sluice

# What a stub target root contains. It is valid as a library, a binary, a harness-less bench
# and a build script, so the stub does not need to know which kind of target it stands for.
STUB='//! Stub written by scripts/build-image-steps.sh for the dependency layer of the image.
#[allow(dead_code)]
fn main() {}'

die() {
    echo "build-image-steps: $*" >&2
    exit 1
}

run_cargo_build() {
    echo "+ ${CARGO_BUILD[*]}" >&2
    "${CARGO_BUILD[@]}"
}

# Absolute paths in `cargo metadata --no-deps` output for one JSON key, one per line.
# cargo prints paths as JSON strings; a path containing a quote or a backslash would be escaped,
# which this does not decode, so such paths are refused instead of mis-copied.
metadata_paths() {
    local key=$1 json=$2 paths
    paths=$(grep -o "\"$key\":\"[^\"]*\"" <<<"$json" | sed -e "s/^\"$key\":\"//" -e 's/"$//') || true
    if grep -q '\\' <<<"$paths"; then
        die "a $key in cargo metadata contains an escaped character; rename it"
    fi
    printf '%s\n' "$paths"
}

# skeleton DEST: run from the workspace root.
write_skeleton() {
    local dest=$1 json root path rel
    [ -f Cargo.toml ] || die "run from the workspace root (no Cargo.toml in $PWD)"
    json=$(cargo metadata --no-deps --format-version 1)
    root=$(metadata_paths workspace_root "$json" | head -n1)
    [ -n "$root" ] || die "cargo metadata printed no workspace_root"
    mkdir -p "$dest"

    # Manifests of every member (the root one included), then the files that change how
    # cargo resolves or builds without being a manifest.
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        rel=${path#"$root"/}
        mkdir -p "$dest/$(dirname "$rel")"
        cp "$path" "$dest/$rel"
    done < <(metadata_paths manifest_path "$json")
    cp Cargo.toml "$dest/Cargo.toml"
    for extra in Cargo.lock .cargo/config.toml .cargo/config rust-toolchain.toml rust-toolchain; do
        if [ -f "$extra" ]; then
            mkdir -p "$dest/$(dirname "$extra")"
            cp "$extra" "$dest/$extra"
        fi
    done
    [ -f "$dest/Cargo.lock" ] || die "no Cargo.lock: the image builds with --locked"

    # A stub for every target root cargo knows, explicit or auto-discovered.
    local count=0
    while IFS= read -r path; do
        [ -n "$path" ] || continue
        rel=${path#"$root"/}
        case $rel in
            /*) die "target $path lies outside the workspace root $root" ;;
        esac
        mkdir -p "$dest/$(dirname "$rel")"
        printf '%s\n' "$STUB" >"$dest/$rel"
        count=$((count + 1))
    done < <(metadata_paths src_path "$json" | sort -u)
    [ "$count" -gt 0 ] || die "cargo metadata listed no targets"
    echo "build-image-steps: skeleton in $dest: $(metadata_paths manifest_path "$json" | grep -c .) manifests, $count stub targets" >&2
}

# After the real sources replace the stubs, their modification times may be older than the
# stub build (COPY keeps the build context's times), and cargo would then take the stub
# artefacts as fresh. Touching every source file of the workspace forces the rebuild of the
# workspace crates, and only of them: dependencies are fingerprinted by version, not by time.
touch_sources() {
    find . -path ./target -prune -o -type f \( -name '*.rs' -o -name 'Cargo.toml' \) -print0 |
        xargs -0 -r touch
}

rust_image_of_dockerfile() {
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    sed -n -E 's/^FROM[[:space:]]+(rust:[^[:space:]]+).*/\1/p' "$here/Dockerfile" | head -n1
}

mirror() {
    local skeleton_only=$1 root image want have
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cd "$root"
    image=$(rust_image_of_dockerfile)
    [ -n "$image" ] || die "no 'FROM rust:...' line in Dockerfile"
    want=$(sed -E 's/^rust:([0-9]+\.[0-9]+(\.[0-9]+)?).*/\1/' <<<"$image")
    have=$(rustc --version | awk '{print $2}')
    echo "build-image-steps: image builder $image (Rust $want); this machine has Rust $have" >&2
    if [ "$want" != "$have" ]; then
        echo "build-image-steps: note: toolchains differ; the command, profile, features and lockfile are the same" >&2
    fi

    # Step 1 of the image: the skeleton must resolve with the same lockfile under --locked.
    TMP_SKELETON=$(mktemp -d)
    trap 'rm -rf "$TMP_SKELETON"' EXIT
    local tmp=$TMP_SKELETON
    write_skeleton "$tmp/skeleton"
    # `cargo update --workspace --locked` re-resolves the workspace members against the lockfile
    # and fails, without writing anything, if the lockfile would have to change.
    (cd "$tmp/skeleton" && cargo update --workspace --locked --quiet) ||
        die "the dependency skeleton does not resolve with Cargo.lock under --locked"
    echo "build-image-steps: skeleton resolves with Cargo.lock (--locked)" >&2
    if [ "$skeleton_only" = 1 ]; then
        return 0
    fi

    # Step 2 of the image: the release build of the real sources.
    run_cargo_build
    [ -x "target/release/$BIN" ] || die "target/release/$BIN was not built"
    echo "build-image-steps: built target/release/$BIN ($(du -h "target/release/$BIN" | cut -f1))" >&2
}

main() {
    local cmd=${1:-mirror}
    case $cmd in
        mirror) mirror 0 ;;
        --skeleton-only) mirror 1 ;;
        skeleton)
            [ $# -eq 2 ] || die "usage: $0 skeleton DEST"
            write_skeleton "$2"
            ;;
        deps)
            [ $# -eq 1 ] || die "usage: $0 deps"
            run_cargo_build
            ;;
        release)
            [ $# -eq 2 ] || die "usage: $0 release OUTDIR"
            touch_sources
            run_cargo_build
            install -D -m 0755 "target/release/$BIN" "$2/$BIN"
            ;;
        print-command) echo "${CARGO_BUILD[*]}" ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | grep '^#' | sed 's/^# \{0,1\}//' ;;
        *) die "unknown step '$cmd' (see --help)" ;;
    esac
}

main "$@"
