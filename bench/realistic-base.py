#!/usr/bin/env python3
"""Writes the file trees of a realistic image base for bench/build.sh, one directory per layer.

usage: realistic-base.py OUT_DIR TOTAL_BYTES [LAYERS]

Layer 0 is an OS-like bottom layer (busybox-static, /etc/passwd and /etc/group, /opt, /tmp,
/usr/share/doc text); layers 1..LAYERS-1 split TOTAL_BYTES between package-like trees
(/usr/lib/pkgN/dDD/fFFFF): 85% of 0.5-16 KiB, 14% of 16-256 KiB, 1% of 1-4 MiB, as distro images have.
Half the files are random bytes (incompressible, like binaries), half base64 text (gzip
shrinks it to about 3/4). Seeded, so every run makes the same trees. Prints how many files it wrote.
"""
import base64, os, random, shutil, sys

out, total = sys.argv[1], int(sys.argv[2])
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 5
rng = random.Random(42)

def write(path, size, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = base64.b64encode(rng.randbytes(size * 3 // 4 + 3))[:size] if text else rng.randbytes(size)
    with open(path, 'wb') as f:
        f.write(data)

bottom = os.path.join(out, 'layer0')
for d in ('bin', 'etc', 'opt', 'tmp', 'root', 'usr/bin', 'usr/share/doc', 'var/log'):
    os.makedirs(os.path.join(bottom, d), exist_ok=True)
os.chmod(os.path.join(bottom, 'tmp'), 0o1777)
shutil.copy('/bin/busybox', os.path.join(bottom, 'bin/busybox'))
os.symlink('busybox', os.path.join(bottom, 'bin/sh'))
with open(os.path.join(bottom, 'etc/passwd'), 'w') as f:
    f.write('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n')
with open(os.path.join(bottom, 'etc/group'), 'w') as f:
    f.write('root:x:0:\nnogroup:x:65534:\n')
for i in range(300):
    write(os.path.join(bottom, f'usr/share/doc/pkg{i // 20}/copyright-{i}'), rng.randint(500, 6000), True)

per_layer = total // (layers - 1)
count = 303  # the bottom layer's files
for layer in range(1, layers):
    left = per_layer
    index = 0
    while left > 0:
        roll = rng.random()
        size = rng.randint(512, 16 << 10) if roll < 0.85 else rng.randint(16 << 10, 256 << 10) if roll < 0.99 else rng.randint(1 << 20, 4 << 20)
        size = min(size, left)
        write(os.path.join(out, f'layer{layer}', f'usr/lib/pkg{layer}', f'd{index // 50:03d}', f'f{index:05d}'), size, index % 2 == 1)
        left -= size
        index += 1
    count += index
print(count)
