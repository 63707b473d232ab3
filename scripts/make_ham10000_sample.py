#!/usr/bin/python3
"""Builds data/samples/ham10000/: a small, real sample of HAM10000 shipped in the repository so that the
README's main command works on a fresh clone.

For every diagnosis, whole lesions (all photographs of a lesion, never a part of one) are drawn in a seeded
random order until the label has at least --per-label images; each image is downscaled to 96x72 with area
averaging (PIL's BOX filter) and saved as JPEG. The layout is label folders (ROOT/<dx>/<image_id>.jpg) plus
a metadata.csv with the original columns for exactly these images, so both import paths can be tried on it.
The licence and citation are copied next to the images. Run from the repository root:

    /usr/bin/python3 scripts/make_ham10000_sample.py --source ../shared/data/ham10000

Needs Debian's python3-pil (a development tool only; dscope itself decodes with stb_image).
"""
import argparse
import csv
import random
import shutil
from collections import defaultdict
from pathlib import Path

from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="folder with images/ and HAM10000_metadata.csv")
    parser.add_argument("--out", type=Path, default=Path("data/samples/ham10000"))
    parser.add_argument("--per-label", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2018)
    parser.add_argument("--size", default="96x72", help="width x height of the shipped images")
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    with open(args.source / "HAM10000_metadata.csv", newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames
        rows = list(reader)
    lesions = defaultdict(list)  # (dx, lesion_id) -> rows
    for row in rows:
        lesions[(row["dx"], row["lesion_id"])].append(row)

    rng = random.Random(args.seed)
    chosen = []
    for dx in sorted({dx for dx, _ in lesions}):
        ids = sorted(lesion for d, lesion in lesions if d == dx)
        rng.shuffle(ids)
        count = 0
        for lesion in ids:
            if count >= args.per_label:
                break
            group = sorted(lesions[(dx, lesion)], key=lambda r: r["image_id"])
            chosen.extend(group)
            count += len(group)

    if args.out.exists():
        shutil.rmtree(args.out)
    for row in chosen:
        target = args.out / row["dx"] / (row["image_id"] + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(args.source / "images" / (row["image_id"] + ".jpg")) as image:
            image.convert("RGB").resize((width, height), Image.BOX).save(target, quality=args.quality)
    with open(args.out / "metadata.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(chosen, key=lambda r: (r["dx"], r["lesion_id"], r["image_id"])))
    shutil.copy(args.source / "SOURCES.md", args.out / "SOURCES.md")
    with open(args.out / "README.md", "w") as f:
        f.write(
            "# HAM10000 sample shipped with dscope\n\n"
            f"{len(chosen)} images: whole lesions drawn per diagnosis with seed {args.seed} until each label had at "
            f"least {args.per_label} images, downscaled to {width}x{height} by `scripts/make_ham10000_sample.py`. "
            "One folder per label, plus `metadata.csv` (the original HAM10000 columns for exactly these images; "
            "`dscope` finds the images in the label folders below it, so either import works).\n\n"
            "**Licence**: CC BY-NC 4.0 (non-commercial use, attribution required), from Harvard Dataverse "
            "doi:10.7910/DVN/DBW86T. See SOURCES.md for the provenance of the 192x144 copies these come from.\n\n"
            "**Cite**: Tschandl P., Rosendahl C., Kittler H. \"The HAM10000 dataset, a large collection of "
            "multi-source dermatoscopic images of common pigmented skin lesions\", Sci. Data 5, 180161 (2018). "
            "doi:10.1038/sdata.2018.161\n"
        )
    per_label = defaultdict(int)
    for row in chosen:
        per_label[row["dx"]] += 1
    print(f"{len(chosen)} images from {len({r['lesion_id'] for r in chosen})} lesions into {args.out}:",
          ", ".join(f"{dx} {n}" for dx, n in sorted(per_label.items())))


if __name__ == "__main__":
    main()
