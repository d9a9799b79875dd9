#!/usr/bin/env bash
# Builds notetaker/data/sample.flac, the short real-speech recording `notetaker transcribe
# --sample` plays: three LibriVox utterances (Jane Austen, "Sense and Sensibility", ch. 1;
# public domain) from Debian's pocketsphinx-testdata, joined with short pauses.
# Needs: sox, pocketsphinx-testdata.
set -euo pipefail
src=/usr/share/pocketsphinx/test/data/librivox
out="$(dirname "$0")/../notetaker/data/sample.flac"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sox -n -r 16000 -c 1 -b 16 "$tmp/pause.wav" trim 0 0.8
sox "$src/sense_and_sensibility_01_austen_64kb-0870.wav" "$tmp/pause.wav" \
    "$src/sense_and_sensibility_01_austen_64kb-0880.wav" "$tmp/pause.wav" \
    "$src/sense_and_sensibility_01_austen_64kb-0890.wav" \
    -r 16000 -c 1 -b 16 "$out"
soxi "$out"
