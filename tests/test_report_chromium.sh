#!/usr/bin/env bash
# test_report_chromium.sh: `unforget report` over generated fake runs, rendered by headless
# Chromium; the screenshot must not be blank (many distinct colours, the plot palette present).
# Exit 77 (skip) when chromium, /usr/bin/python3 or the `report` subcommand is absent.
set -u
BIN=${UF_BIN:-}
[ -n "$BIN" ] && BIN=$(readlink -f "$BIN")
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then echo "SKIP: UF_BIN not set to the unforget binary"; exit 77; fi
CHROME=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$CHROME" ]; then echo "SKIP: chromium not installed (apt-get install chromium)"; exit 77; fi
PY=/usr/bin/python3
if [ ! -x "$PY" ]; then PY=$(command -v python3 || true); fi
if [ -z "$PY" ]; then echo "SKIP: no python3 to read the PNG"; exit 77; fi
if ! "$BIN" report --help >/dev/null 2>&1; then echo "SKIP: this unforget has no 'report' subcommand"; exit 77; fi

WORK=$(mktemp -d /tmp/uf-report-chromium-XXXXXX)
PROFILE=$(mktemp -d /tmp/uf-chromium-profile-XXXXXX)
cleanup() { rm -rf "$WORK" "$PROFILE"; }
trap cleanup EXIT
cd "$WORK" || exit 1
[ -n "${UF_REPORT_DEBUG:-}" ] && trap - EXIT

# fake runs: 3 methods x 3 poison ratios x 2 seeds, with loss logs in the trainer's flat form
i=0
for m in sft der ewc; do
  for p in 0.00 0.10 0.20; do
    for s in 1 2; do
      i=$((i + 1))
      d="$WORK/runs/$m-p$p-s$s"; mkdir -p "$d"
      case $m in sft) b=30;; der) b=3;; *) b=20;; esac
      asr=$(awk -v b=$b -v p=$p -v s=$s 'BEGIN{printf "%.4f", (b + 100*p*(b > 5 ? 1 : 0.2) + s)/100}')
      acc=$(awk -v m=$m -v p=$p -v s=$s 'BEGIN{b=(m=="ewc")?0.80:0.94; printf "%.4f", b - 0.05*p + 0.002*s}')
      printf '{"schema":"unforget.results/1","run":"%s-p%s-s%s","method":"%s","setting":{"poison_ratio":%s,"seed":%s,"model":"tiny","task":"sst2"},"metrics":{"asr":{"value":%s,"lo":%s,"hi":%s,"n":100},"accuracy":{"value":%s,"lo":%s,"hi":%s,"n":872}},"decoding":{"strategy":"greedy","max_new_tokens":64},"judge":"keyword:llm-attacks-29"}\n' \
        "$m" "$p" "$s" "$m" "$p" "$s" "$asr" "$(awk -v a=$asr 'BEGIN{printf "%.4f", (a > 0.02 ? a - 0.02 : 0)}')" \
        "$(awk -v a=$asr 'BEGIN{printf "%.4f", a+0.03}')" "$acc" "$(awk -v a=$acc 'BEGIN{printf "%.4f", a-0.01}')" \
        "$(awk -v a=$acc 'BEGIN{printf "%.4f", a+0.01}')" > "$d/results.json"
      awk -v k=$i 'BEGIN{for (t = 0; t <= 200; t += 10) printf "{\"step\":%d,\"lr\":0.0003,\"grad_norm\":1.5,\"tokens_per_s\":900.0,\"ce\":%.4f,\"loss\":%.4f}\n", t, 3/(1+t*0.03), 3/(1+t*0.03)+0.05*k/10}' > "$d/metrics.jsonl"
    done
  done
done

"$BIN" report "$WORK/runs" -o "$WORK/report.html" --csv "$WORK/table.csv" || { echo "FAIL: unforget report exited $?"; exit 1; }
grep -q "<svg" "$WORK/report.html" || { echo "FAIL: no <svg> in the report"; exit 1; }
[ "$(wc -l < "$WORK/table.csv")" -eq 19 ] || { echo "FAIL: table.csv should have 19 lines"; exit 1; }

timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --screenshot="$WORK/shot.png" --window-size=1200,900 \
  "file://$WORK/report.html" >"$WORK/chromium.log" 2>&1
if [ ! -s "$WORK/shot.png" ]; then echo "FAIL: chromium wrote no screenshot"; tail -20 "$WORK/chromium.log"; exit 1; fi
[ -n "${UF_REPORT_KEEP:-}" ] && cp "$WORK/shot.png" "$WORK/report.html" "$UF_REPORT_KEEP/"

# Decode the PNG (8-bit RGB/RGBA, non-interlaced, as Chromium writes it) with zlib only.
"$PY" - "$WORK/shot.png" <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
pos, idat, w = 8, b'', 0
while pos < len(data):
    n, = struct.unpack('>I', data[pos:pos + 4]); kind = data[pos + 4:pos + 8]; body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype, _, _, interlace = struct.unpack('>IIBBBBB', body)
        assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        bpp = 3 if ctype == 2 else 4
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
raw = zlib.decompress(idat); stride = w * bpp; prev = bytearray(stride); colors = {}; i = 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    if y % 2 == 0:
        for x in range(0, stride, bpp * 2):
            colors[bytes(line[x:x + 3])] = colors.get(bytes(line[x:x + 3]), 0) + 1
total = sum(colors.values()); top = max(colors.values())
# the plot palette: blue 1f77b4, orange ff7f0e, green 2ca02c (antialiasing aside, exact pixels exist)
palette = [bytes.fromhex(c) for c in ('1f77b4', 'ff7f0e', '2ca02c')]
found = [c.hex() for c in palette if c in colors]
print('size %dx%d, %d distinct colours, background share %.2f, palette found: %s' % (w, h, len(colors), top / total, found))
assert len(colors) >= 20, 'blank-looking screenshot: only %d colours' % len(colors)
assert top / total < 0.97, 'screenshot is almost one colour'
assert len(found) >= 2, 'plot colours not visible'
EOF
rc=$?
[ $rc -eq 0 ] || { echo "FAIL: screenshot check"; exit 1; }
echo "ok"
