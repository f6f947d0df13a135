#!/bin/sh
# Regenerates every shipped trace in this folder: the conversions from the published originals
# (see NOTICE) and the campus trace from its preset. test_traces checks that the committed files
# equal what this makes.
#
#   traces/data/convert.sh path/to/hearth [path/to/published]
#
# The published originals default to published/ in this folder (committed as published).
set -eu
hearth=${1:?usage: convert.sh path/to/hearth [path/to/published]}
here=$(cd "$(dirname "$0")" && pwd)
public=${2:-$here/published}
bamboo=$public/bamboo-aws-spot
spotserve=$public/spotserve-aws-spot

# Bamboo: the series in seconds; the *_scaled.csv copies (hours, 3.6 s resolution) are left out.
"$hearth" trace convert --from bamboo --time-unit s -o "$here/bamboo-g4dn-us-east-1c-2020-11-20.csv" \
  "$bamboo/aws-spot-instances-g4dn-xlarge-us-east-1c-2020-11-20-1930-to-2020-11-21-2200.csv"
"$hearth" trace convert --from bamboo --time-unit s -o "$here/bamboo-g4dn-us-east-1d-2020-11-23.csv" \
  "$bamboo/aws-spot-instances-g4dn-xlarge-us-east-1d-2020-11-23-1730-to-2020-11-24-1530.csv"
"$hearth" trace convert --from bamboo --time-unit s -o "$here/bamboo-p2-us-east-1e-2020-11-23.csv" \
  "$bamboo/aws-spot-instances-p2-xlarge-us-east-1e-2020-11-23-1700-to-2020-11-24-0700.csv"
# Published only in hours.
"$hearth" trace convert --from bamboo --time-unit h -o "$here/bamboo-p2-2020-11-20-to-23.csv" \
  "$bamboo/aws-spot-instances-p2-xlarge-2020-11-20-to-2020-11-23.csv"

# SpotServe: the full g4dn trace and its three segments (cut from it, so T4 too).
"$hearth" trace convert --from spotserve -o "$here/spotserve-g4dn.csv" "$spotserve/g4dn.csv"
for segment in 0203 0304 0506; do
  "$hearth" trace convert --from spotserve --gpu-type T4-16GB \
    -o "$here/spotserve-g4dn-segment-$segment.csv" "$spotserve/trace_$segment.txt"
done

# The campus pool of traces/GENERATORS.md, one day.
"$hearth" trace generate --preset campus --seed 1 --duration 24h -o "$here/campus-seed1-24h.csv"
