#!/usr/bin/python3
"""Independent reference values for test/nifti.test.ts, computed with nibabel.

Run once after `sh scripts/fetch-data.sh`:
    /usr/bin/python3 scripts/make-nifti-expected.py
It writes test/fixtures/nifti-nibabel-expected.json (shape, affine, voxel size, datatype,
sums and axis-weighted sums of all voxels, and the values at a fixed set of voxels) for the
MRIcron images in data/mricron/, so the test can compare our reader with nibabel's without
needing Python.
"""
import json
import os
import sys

import nibabel as nib
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["ch2.nii.gz", "ch2bet.nii.gz", "ch2better.nii.gz", "inia19-t1-brain.nii.gz"]


def describe(path):
    img = nib.load(path)
    data = np.asarray(img.get_fdata(dtype=np.float64), dtype=np.float64)
    nx, ny, nz = data.shape[:3]
    data = data.reshape(nx, ny, nz)
    rng = np.random.RandomState(12345)
    points = [[0, 0, 0], [nx - 1, ny - 1, nz - 1], [nx // 2, ny // 2, nz // 2]]
    points += [[int(rng.randint(nx)), int(rng.randint(ny)), int(rng.randint(nz))] for _ in range(40)]
    x = np.arange(nx, dtype=np.float64)[:, None, None]
    y = np.arange(ny, dtype=np.float64)[None, :, None]
    z = np.arange(nz, dtype=np.float64)[None, None, :]
    return {
        "file": os.path.basename(path),
        "shape": [int(nx), int(ny), int(nz)],
        "dtype": str(img.get_data_dtype()),
        "zooms": [float(v) for v in img.header.get_zooms()[:3]],
        "qform_code": int(img.header["qform_code"]),
        "sform_code": int(img.header["sform_code"]),
        "affine": img.affine.tolist(),
        "sum": float(data.sum()),
        "sum_x": float((data * x).sum()),
        "sum_y": float((data * y).sum()),
        "sum_z": float((data * z).sum()),
        "points": [{"xyz": p, "value": float(data[p[0], p[1], p[2]])} for p in points],
    }


def main():
    out = {
        "generator": "scripts/make-nifti-expected.py",
        "nibabel": nib.__version__,
        "images": [describe(os.path.join(ROOT, "data", "mricron", f)) for f in FILES],
    }
    dest = os.path.join(ROOT, "test", "fixtures", "nifti-nibabel-expected.json")
    with open(dest + ".tmp", "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    os.replace(dest + ".tmp", dest)
    print("wrote", dest, file=sys.stderr)


if __name__ == "__main__":
    main()
