"""Loaded by every Python process of the paper-config rehearsal (tests/test_paper_rehearsal.py puts
this folder on PYTHONPATH): no network, and torchvision told the MD5s of the tiny stand-ins.

- SNNL_REHEARSAL_NETLOG: a file; each attempt to resolve a name or open a connection is appended
  to it (one line: the process and the address) and refused with OSError, as with no network.
- SNNL_REHEARSAL_MD5: a JSON file {"cifar10": {train_list, test_list, meta}, "svhn": split_list};
  when torchvision.datasets.cifar / .svhn is imported, CIFAR10's and SVHN's tables of the real
  files' MD5s are replaced by it (nothing else of torchvision changes).
Without these variables this module does nothing.
"""

import importlib.abc
import importlib.machinery
import json
import os
import socket
import sys

_NETLOG = os.environ.get("SNNL_REHEARSAL_NETLOG")
_MD5 = os.environ.get("SNNL_REHEARSAL_MD5")

if _NETLOG:
    def _local(name, args):
        if name == "connect":
            return getattr(args[0], "family", None) == socket.AF_UNIX  # a local socket, no network
        return bool(args) and args[0] in ("localhost", "127.0.0.1", "::1")

    def _refuse(name):
        def refuse(*args, **kwargs):
            if _local(name, args):
                return _ORIGINAL[name](*args, **kwargs)
            target = args[1] if name == "connect" and len(args) > 1 else (args[0] if args else "")
            with open(_NETLOG, "a") as fh:
                fh.write(f"{os.getpid()} {' '.join(sys.argv[:2])}: {name} {target!r}\n")
            raise OSError(f"network access is disabled in the paper-config rehearsal ({name} {target!r})")
        return refuse

    _ORIGINAL = {"getaddrinfo": socket.getaddrinfo, "connect": socket.socket.connect}
    socket.getaddrinfo = _refuse("getaddrinfo")
    socket.socket.connect = _refuse("connect")

if _MD5:
    with open(_MD5) as _fh:
        _TABLES = json.load(_fh)

    def _cifar(module):
        for key, value in _TABLES["cifar10"].items():
            setattr(module.CIFAR10, key, value)

    def _svhn(module):
        module.SVHN.split_list = _TABLES["svhn"]

    _PATCHES = {"torchvision.datasets.cifar": _cifar, "torchvision.datasets.svhn": _svhn}

    class _AfterImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in _PATCHES:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return None
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _PATCHES[name](module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _AfterImport())
