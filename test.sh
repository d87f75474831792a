#!/usr/bin/env bash
# Every test of the project: the training toolkit (pytest) and the service (xunit).
# Needs ../shared beside the repository (datasets and the pretrained checkpoint).
set -euo pipefail
cd "$(dirname "$0")"

echo "== training toolkit (pytest) =="
(cd training && /usr/bin/python3 -m pytest -q -p no:cacheprovider tests)

echo "== service (xunit) =="
dotnet test MultiTaskBert.sln --nologo -v quiet
