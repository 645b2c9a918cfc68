#!/usr/bin/env bash
# .venv-stock (requirements-stock.txt on Python 3.12): scripts/setup_rosfree.sh stock.
exec bash "$(dirname "$0")/setup_rosfree.sh" stock
