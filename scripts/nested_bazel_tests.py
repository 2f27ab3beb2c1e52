#!/usr/bin/env python3
"""strata — Bazel-built test binaries in the nested SVM testbed's L1
(scripts/nested.sh svm --bazel-tests FILE --bazel-results DIR).

FILE lists the tests, one a line (blank lines and '#' comments ignored):

    CONFIG TARGET [GTEST_FILTER]

CONFIG is the `--config=` the test was built with (`-` for none: the
normal build), TARGET its label, GTEST_FILTER (cc_test only) the cases to
run. For every line,

  stage   asks Bazel for the test's command and environment exactly as
          `bazel test` gives them (`bazel run --script_path`: test-setup.sh,
          the runfiles, TEST_SRCDIR/TEST_WORKSPACE/TEST_TARGET/TEST_SIZE,
          the config's --test_env, the BUILD file's args), copies the
          runfiles tree into the initramfs at its own absolute path (files
          once, symlinks as Bazel made them), every shared library `ldd`
          lists for the ELF files in it, bash or python3 when a script in it
          needs them, and writes /bt/ID.sh (the command) and /bt/plan.sh
          (`bazel_test ID LIMIT CONFIG TARGET` lines, run by
          tests/nested/init.sh as the L1's cases). Prints the sum of the
          tests' limits (TEST_TIMEOUT) in seconds.
  collect reads the L1's serial log: each test's XML report (gzip + base64
          between markers, with its md5) and, when it failed, its log, and
          writes DIR/CONFIG/PKG/NAME/test.xml and test.log (CONFIG `default`
          for `-`), as bazel-testlogs holds them. A test that exited non-zero
          with a report of passing cases gets a failing case for its exit
          status; a report garbled in transit is a failure. Tests with no
          result (the L1 stopped first) get nothing: they are listed, and
          their host results stand.

  kvm-skips (for scripts/test.sh) prints FILE's lines for the tests whose
          reports under DIR (bazel-testlogs' layout) have cases skipped for
          want of /dev/kvm (tests/kvm_testing.h, tests/require_kvm.sh): the
          whole test if every case is such a skip, else those cases as a
          gtest filter.

  resume  (an L1 that stopped before its end) collects what LOG has, and
          rewrites ROOTFS's plan without the tests that finished, for the
          next run of the L1.

Usage:
  nested_bazel_tests.py stage FILE ROOTFS MANIFEST
  nested_bazel_tests.py collect MANIFEST LOG DIR
  nested_bazel_tests.py resume MANIFEST LOG DIR ROOTFS
  nested_bazel_tests.py kvm-skips DIR CONFIG
"""
import base64
import gzip
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from xml.sax.saxutils import escape, quoteattr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BAZEL_FLAGS = ["--noshow_progress", "--ui_event_filters=-info,-debug", "--color=no"]
# The L1's paths for what Bazel keeps under the execroot's testlogs and _tmp:
# a tmpfs mounted for each test (tests/nested/init.sh).
L1_TMP = "/bt-tmp"
# Environment of `bazel run --script_path` that `bazel test` does not give.
DROP_ENV = {"BUILD_WORKING_DIRECTORY", "BUILD_WORKSPACE_DIRECTORY", "RUN_UNDER_RUNFILES",
            "TEST_UNDECLARED_OUTPUTS_MANIFEST", "TEST_UNDECLARED_OUTPUTS_ZIP",
            "TEST_UNDECLARED_OUTPUTS_ANNOTATIONS"}
OUTPUT_ENV = {  # test-setup.sh's output files, on the per-test tmpfs
    "XML_OUTPUT_FILE": "test.xml",
    "TEST_PREMATURE_EXIT_FILE": "test.exited_prematurely",
    "TEST_INFRASTRUCTURE_FAILURE_FILE": "test.infrastructure_failure",
    "TEST_LOGSPLITTER_OUTPUT_FILE": "test.splitlogs",
    "TEST_UNUSED_RUNFILES_LOG_FILE": "test.unused_runfiles_log",
    "TEST_WARNINGS_OUTPUT_FILE": "test.warnings",
    "TEST_UNDECLARED_OUTPUTS_DIR": "test.outputs",
    "TEST_UNDECLARED_OUTPUTS_ANNOTATIONS_DIR": "test.outputs_manifest",
}
TEST_PATH = "/bin:/usr/bin:/usr/local/bin"  # --incompatible_strict_action_env
# Words of a shell script that are the shell's own, not programs.
SHELL_WORDS = set("""if then else elif fi for while until do done case esac in function
    select time local export readonly return exit set shift source eval exec trap wait read
    declare typeset unset let true false break continue echo printf test cd pwd type command
    builtin mapfile readarray getopts hash ulimit umask alias kill jobs fg bg shopt""".split())
RUNFILES_ENV = ("TEST_SRCDIR", "RUNFILES_DIR", "JAVA_RUNFILES", "PYTHON_RUNFILES")


def say(msg):
    print(f"nested-bazel-tests: {msg}", file=sys.stderr)


def read_list(path):
    tests = []
    for n, line in enumerate(open(path), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) not in (2, 3) or not words[1].startswith("//"):
            sys.exit(f"{path}:{n}: expected 'CONFIG //TARGET [GTEST_FILTER]', got {line.strip()!r}")
        tests.append({"config": words[0], "target": words[1],
                      "filter": words[2] if len(words) == 3 else ""})
    return tests


def config_dir(config):
    return "default" if config == "-" else config


def target_path(target):  # //pkg/sub:name -> pkg/sub/name (bazel-testlogs' layout)
    pkg, _, name = target[2:].partition(":")
    return f"{pkg}/{name or pkg.rsplit('/', 1)[-1]}"


def bazel_run_script(test):
    """The command and environment `bazel test` gives the test: the script
    `bazel run --script_path` writes (cd EXECROOT && exec env K=V...
    test-setup.sh EXE ARGS "$@")."""
    flags = [] if test["config"] == "-" else [f"--config={test['config']}"]
    with tempfile.NamedTemporaryFile("r", suffix=".sh") as f:
        # close_fds (the default): a Bazel server started here must not
        # inherit flock's lock file (scripts/nested.sh).
        p = subprocess.run(["bazel", "run", *BAZEL_FLAGS, *flags, f"--script_path={f.name}",
                            test["target"]], cwd=ROOT, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            tail = "\n".join(p.stdout.splitlines()[-15:])
            raise RuntimeError(f"bazel run --script_path failed:\n{tail}")
        script = f.read()
    m = re.search(r"^cd (.*?) && \\$", script, re.M)
    if not m:
        raise RuntimeError(f"unexpected script from bazel run:\n{script}")
    execroot = shlex.split(m.group(1))[0]
    body = script[script.index("exec env", m.end()) + len("exec env"):]
    words = shlex.split(body.replace("\\\n", " "))
    env, i = {}, 0
    while i < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]):
        k, _, v = words[i].partition("=")
        env[k] = v
        i += 1
    cmd = [w for w in words[i:] if w != "$@"]
    if not cmd or not cmd[0].endswith("test-setup.sh") or len(cmd) < 2:
        raise RuntimeError(f"unexpected command from bazel run: {cmd[:4]}")
    return execroot, env, cmd[1], cmd[2:]


class Stager:
    def __init__(self, rootfs):
        self.rootfs = rootfs
        self.copied = set()   # absolute host paths already in the rootfs
        self.elves = []       # ELF files copied, for ldd
        self.scripts = []     # files starting with #!
        self.tools = set()

    def dest(self, path):
        return os.path.join(self.rootfs, os.path.normpath(path).lstrip("/"))

    def copy_file(self, path):
        """A regular file at its own absolute path (resolved), once."""
        real = os.path.realpath(path)
        if real in self.copied:
            return real
        self.copied.add(real)
        d = self.dest(real)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(real, d)
        with open(real, "rb") as f:
            head = f.read(128)
        if head.startswith(b"\x7fELF"):
            self.elves.append(real)
        elif head.startswith(b"#!"):
            self.scripts.append(real)
        return real

    def copy_tree(self, top):
        """A runfiles tree at its own path: directories, and each symlink
        as Bazel made it (to the same absolute path, where the target is
        copied too)."""
        for dirpath, dirnames, filenames in os.walk(top):
            os.makedirs(self.dest(dirpath), exist_ok=True)
            for name in list(dirnames) + filenames:
                p = os.path.join(dirpath, name)
                if os.path.islink(p):
                    target = os.path.realpath(p)
                    d = self.dest(p)
                    if os.path.isdir(target):
                        # os.walk does not descend into it: copy its files.
                        self.copy_dir(target)
                    elif os.path.exists(target):
                        self.copy_file(target)
                    else:
                        continue  # a dangling link: as good as absent
                    if not os.path.lexists(d):
                        # To the file itself (Bazel's links may go through
                        # more links, e.g. an sh_test's to its source).
                        os.symlink(target, d)
                elif os.path.isfile(p):
                    self.copy_file(p)

    def copy_dir(self, top):
        for dirpath, _, filenames in os.walk(top, followlinks=True):
            for name in filenames:
                p = os.path.join(dirpath, name)
                if os.path.isfile(p):
                    self.copy_file(p)

    def copy_at(self, path):
        """A file at the path given (e.g. ldd's): the file itself at its
        real path, and a link to it at this one if that differs (Bazel's
        _solib_* entries, the host's /lib -> usr/lib)."""
        d = self.dest(path)
        if os.path.lexists(d) or not os.path.exists(path):
            return
        real = self.copy_file(path)
        if os.path.normpath(path) != real and not os.path.lexists(d):
            os.makedirs(os.path.dirname(d), exist_ok=True)
            os.symlink(real, d)

    def copy_libraries(self):
        done = set()
        while self.elves:
            elf = self.elves.pop()
            if elf in done:
                continue
            done.add(elf)
            p = subprocess.run(["ldd", elf], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            if p.returncode != 0:
                continue  # static, or not for this host (a guest)
            for lib in re.findall(r"(/\S+)", p.stdout):
                if "not found" in lib:
                    continue
                self.copy_at(lib)

    def tools_for_scripts(self):
        """What the test's scripts need beyond busybox: their interpreter
        (bash, python3), and each program a shell script names (a word
        where a command may stand) that is on the tests' PATH here and is
        neither a busybox applet nor the shell's own: coreutils' install,
        gcc (with its toolchain), pkg-config, readelf, ... A word that is
        not a command after all costs a copied program, nothing else."""
        if not hasattr(self, "applets"):
            bb = subprocess.run(["busybox", "--list"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
            self.applets = set(bb.stdout.split())
        for s in self.scripts:
            with open(s, "rb") as f:
                text = f.read().decode(errors="replace")
            first = text.split("\n", 1)[0]
            if "bash" in first:
                self.tools.add("bash")
            if "python3" in first:
                self.tools.add("python3")
            if "sh" in first and "python" not in first:
                code = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
                for w in set(re.findall(r"(?:^|[\s;|&(`$])([a-z][a-z0-9_.+-]*)", code, re.M)):
                    if (w not in self.applets and w not in SHELL_WORDS
                            and shutil.which(w, path=TEST_PATH)):
                        self.tools.add(w)
        self.scripts = []

    def copy_program(self, name):
        """A program on the tests' PATH, and the links that lead to it."""
        path = shutil.which(name, path=TEST_PATH)
        if not path:
            say(f"no {name} on the tests' PATH {TEST_PATH}")
            return
        self.copy_at(path)

    def copy_c_toolchain(self):
        """gcc as a test script runs it (C only): the driver, cc1, as, ld,
        gcc's own directory without the other languages and the static
        sanitizer runtimes, and glibc's and Linux's development files
        (dpkg -L) without the static libraries."""
        gcc = shutil.which("gcc", path=TEST_PATH)
        if not gcc:
            say("no gcc on the tests' PATH")
            return
        for prog in ("gcc", "cc", "as", "ld", "ld.bfd"):
            if shutil.which(prog, path=TEST_PATH):
                self.copy_program(prog)
        # libgcc_s.so (a linker script) names libgcc_s.so.1.
        self.copy_at(subprocess.check_output(
            [gcc, "-print-file-name=libgcc_s.so.1"], text=True).strip())
        libdir = os.path.dirname(subprocess.check_output(
            [gcc, "-print-libgcc-file-name"], text=True).strip())
        skip = re.compile(r"^(cc1plus|cc1obj|cc1objplus|lto1|lto-dump|f951|gnat1|g\+\+-mapper-server|"
                          r"ada.*|plugin|finclude|libgfortran.*|libobjc.*|libgomp.*|libitm.*|"
                          r"libquadmath.*|libcc1.*|libstdc\+\+.*|libsupc\+\+.*|libgphobos.*|"
                          r"libgdruntime.*|libgo.*|libbacktrace.*|"
                          r"lib(asan|tsan|lsan|ubsan|hwasan)\.a)$")
        for dirpath, dirnames, filenames in os.walk(libdir):
            if dirpath == libdir:
                dirnames[:] = [d for d in dirnames if not skip.match(d)]
                filenames = [f for f in filenames if not skip.match(f)]
            for name in filenames:
                self.copy_at(os.path.join(dirpath, name))
        arch = subprocess.check_output(["dpkg", "--print-architecture"], text=True).strip()
        for pkg in (f"libc6-dev:{arch}", f"linux-libc-dev:{arch}"):
            p = subprocess.run(["dpkg", "-L", pkg], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
            for f in p.stdout.splitlines():
                if f.startswith("/usr/share") or (f.endswith(".a") and "nonshared" not in f):
                    continue
                if os.path.isfile(f):
                    self.copy_at(f)

    def copy_tools(self):
        """The tools the scripts need, and those their own scripts need
        (ldd is a bash script)."""
        done = set()
        while self.tools - done:
            for tool in sorted(self.tools - done):
                done.add(tool)
                if tool == "gcc":
                    self.copy_c_toolchain()
                elif tool == "python3":
                    self.copy_python()
                else:
                    self.copy_program(tool)
            self.tools_for_scripts()

    def copy_python(self):
        """The python3 on the tests' PATH (Bazel's strict action env), at
        its real path (python finds its library from there) with the name
        on PATH a link to it, and its standard library without what no
        test imports."""
        py = shutil.which("python3", path=TEST_PATH)
        if not py:
            say("no python3 on the tests' PATH")
            return
        real = os.path.realpath(py)
        self.copy_at(real)
        os.makedirs(os.path.dirname(self.dest(py)), exist_ok=True)
        if not os.path.lexists(self.dest(py)):
            os.symlink(real, self.dest(py))
        ver = os.path.basename(real)  # python3.11
        skip = {"test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3",
                "pydoc_data", "distutils", "site-packages", "dist-packages"}
        lib = f"/usr/lib/{ver}"
        for dirpath, dirnames, filenames in os.walk(lib):
            if dirpath == lib:
                dirnames[:] = [d for d in dirnames
                               if d not in skip and not d.startswith("config-")]
            for name in filenames:
                p = os.path.join(dirpath, name)
                if os.path.isfile(p) and not os.path.islink(p):
                    self.copy_at(p)


def host_limits():
    """ulimit options giving the L1's tests the limits tests get here
    (Bazel's tests inherit its server's): open files (a VM has a descriptor
    per vCPU: the L1's default of 1024 stops 1024 vCPUs), user processes
    (a thread per vCPU), locked memory, stack. Not pending signals: the L1
    keeps its own limit (about 7800 for its 2 GiB), so that a test that
    queues real-time signals without bound (a kick is one) fails on its
    own instead of stalling the whole L1 under tens of thousands of them."""
    opts = []
    for flag, res in (("-n", resource.RLIMIT_NOFILE), ("-u", resource.RLIMIT_NPROC),
                      ("-l", resource.RLIMIT_MEMLOCK), ("-s", resource.RLIMIT_STACK)):
        soft = resource.getrlimit(res)[0]
        if res == resource.RLIMIT_MEMLOCK or res == resource.RLIMIT_STACK:
            soft = soft if soft == resource.RLIM_INFINITY else soft // 1024  # KiB
        opts.append(f"{flag} {'unlimited' if soft == resource.RLIM_INFINITY else soft}")
    return " ".join(opts)


def stage(list_file, rootfs, manifest):
    tests = read_list(list_file)
    st = Stager(rootfs)
    os.makedirs(os.path.join(rootfs, "bt"), exist_ok=True)
    plan = ["# Bazel-built tests (scripts/nested_bazel_tests.py stage): run by",
            "# tests/nested/init.sh as the L1's cases, with the host's limits.",
            # (STRATA_BT_LIMITS is for testing the L1's own limits.)
            "bt_setup " + shlex.quote(os.environ.get("STRATA_BT_LIMITS") or host_limits())]
    total = 0
    for n, t in enumerate(tests):
        t["id"] = f"t{n}"
        t["path"] = target_path(t["target"])
        try:
            execroot, env, exe, args = bazel_run_script(t)
        except RuntimeError as e:
            t["error"] = str(e)
            say(f"{t['target']} ({config_dir(t['config'])}): {e}")
            continue
        runfiles = os.path.join(execroot, env["TEST_SRCDIR"])
        st.copy_tree(runfiles)
        st.tools_for_scripts()
        for k in DROP_ENV:
            env.pop(k, None)
        for k in RUNFILES_ENV:
            if k in env and not os.path.isabs(env[k]):
                env[k] = os.path.join(execroot, env[k])
        for k, f in OUTPUT_ENV.items():
            env[k] = f"{L1_TMP}/out/{f}"
        env["TEST_TMPDIR"] = f"{L1_TMP}/tmp"
        env["GTEST_TMP_DIR"] = env["TEST_TMPDIR"]
        env["HOME"] = env["TEST_TMPDIR"]
        env.setdefault("USER", "root")
        env["PATH"] = ".:" + env.get("PATH", "/bin:/usr/bin")
        # For the tests: they run in the nested SVM L1 (QEMU's TCG SVM), so
        # they can skip, naming it, what that L1 cannot do.
        env["STRATA_NESTED_L1"] = "svm-tcg"
        if t["filter"]:
            env["GTEST_FILTER"] = t["filter"]
        workdir = os.path.join(env["TEST_SRCDIR"], env.get("TEST_WORKSPACE", ""))
        t["limit"] = int(env.get("TEST_TIMEOUT", "300"))
        total += t["limit"]
        with open(os.path.join(rootfs, "bt", f"{t['id']}.sh"), "w") as f:
            f.write("#!/bin/sh\n# %s (%s)\n" % (t["target"], config_dir(t["config"])))
            f.write(f"cd {shlex.quote(workdir)} || exit 97\n")
            f.write("exec env -i " + " ".join(shlex.quote(f"{k}={v}") for k, v in sorted(env.items()))
                    + " " + " ".join(shlex.quote(w) for w in [f"./{exe}", *args]) + "\n")
        os.chmod(os.path.join(rootfs, "bt", f"{t['id']}.sh"), 0o755)
        plan.append(" ".join(shlex.quote(w) for w in
                             ["bazel_test", t["id"], str(t["limit"]),
                              config_dir(t["config"]), t["target"]]))
    st.copy_tools()
    st.copy_libraries()
    with open(os.path.join(rootfs, "bt", "plan.sh"), "w") as f:
        f.write("\n".join(plan) + "\n")
    with open(manifest, "w") as f:
        json.dump(tests, f, indent=1)
    print(total)


def decode(chunks):
    return gzip.decompress(base64.b64decode("".join(chunks)))


def failing_xml(name, message, log=""):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites>\n'
            f'  <testsuite name={quoteattr(name)} tests="1" failures="0" errors="1">\n'
            f'    <testcase name={quoteattr(name)} status="run">'
            f'<error message={quoteattr(message)}>{escape(log)}</error></testcase>\n'
            '  </testsuite>\n</testsuites>\n')


def with_exit_case(xml, name, rc):
    """A report whose cases all passed from a test that exited non-zero
    (e.g. a leak found at exit): one more case, failing, says so."""
    case = (f'<testsuite name={quoteattr(name)} tests="1" failures="0" errors="1">'
            f'<testcase name="exit_status" classname={quoteattr(name)} status="run">'
            f'<error message={quoteattr(f"the test exited with status {rc} after its cases passed (see its log)")}/>'
            '</testcase></testsuite>\n')
    i = xml.rfind("</testsuites>")
    return xml[:i] + case + xml[i:] if i >= 0 else xml


def collect(manifest, log, outdir):
    tests = json.load(open(manifest))
    xml_chunks, log_chunks, ends = {}, {}, {}
    for raw in open(log, errors="replace"):
        line = raw.replace("\r", "").rstrip("\n")
        m = re.match(r"^bt-([xl]) (t\d+) (\S+)$", line)
        if m:
            (xml_chunks if m.group(1) == "x" else log_chunks).setdefault(m.group(2), []).append(m.group(3))
            continue
        m = re.match(r"^bt: END (t\d+) (.*)$", line)
        if m:
            ends[m.group(1)] = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            xml_chunks.setdefault(m.group(1), [])
    missing = []
    for t in tests:
        d = os.path.join(outdir, config_dir(t["config"]), t["path"])
        name = t["path"]
        if "error" in t:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "test.xml"), "w") as f:
                f.write(failing_xml(name, "could not be staged for the L1", t["error"]))
            continue
        end = ends.get(t["id"])
        if end is None:
            if not os.path.exists(os.path.join(d, "test.xml")):  # nor an earlier run
                missing.append(t)
            continue
        os.makedirs(d, exist_ok=True)
        text = ""
        if log_chunks.get(t["id"]):
            try:
                text = decode(log_chunks[t["id"]]).decode(errors="replace")
            except Exception as e:  # noqa: BLE001 — a garbled log is still reported below
                text = f"(the log came out of the L1 garbled: {e})\n"
        else:
            text = f"(the test passed in the L1; its log stays there)\n"
        with open(os.path.join(d, "test.log"), "w") as f:
            f.write(f"{t['target']} ({config_dir(t['config'])}) in the nested SVM L1: "
                    f"exit {end.get('rc')}, {end.get('secs')} s\n" + text)
        try:
            xml = decode(xml_chunks[t["id"]])
            if hashlib.md5(xml).hexdigest() != end.get("xml"):
                raise ValueError("md5 mismatch")
            xml = xml.decode(errors="replace")
        except Exception as e:  # noqa: BLE001
            xml = failing_xml(name, f"the test's report came out of the L1 garbled ({e}); exit {end.get('rc')}")
        else:
            if end.get("rc") != "0" and not re.search(r"<(failure|error)\b", xml):
                xml = with_exit_case(xml, name, end.get("rc"))
        with open(os.path.join(d, "test.xml"), "w") as f:
            f.write(xml)
    for t in missing:
        say(f"no result from the L1 for {t['target']} ({config_dir(t['config'])})")
    return ends


def resume(manifest, log, outdir, rootfs):
    """The next run of an L1 that stopped: without the tests that finished,
    and without one that was under way when the L1 stopped in two runs
    (it fails, and the tests after it still run)."""
    done = set(collect(manifest, log, outdir))
    tests = json.load(open(manifest))
    begun = [m.group(1) for m in re.finditer(r"^bt: BEGIN (t\d+)", open(log, errors="replace")
                                             .read().replace("\r", ""), re.M)]
    under_way = [i for i in begun if i not in done][-1:]
    if under_way:
        # What the L1 said since that test began (a kernel panic, a soft
        # lockup): the next run's log replaces this one.
        text = open(log, errors="replace").read().replace("\r", "")
        tail = [l for l in text[text.rfind(f"bt: BEGIN {under_way[0]} "):].splitlines()
                if not l.startswith(("bt-x ", "bt-l ", "nested-pulse"))]
        say(f"the L1 stopped during {under_way[0]}; its lines since:")
        for l in tail[-60:]:
            print(f"  | {l}", file=sys.stderr)
    for t in tests:
        if t.get("id") in under_way:
            t["stalls"] = t.get("stalls", 0) + 1
            if t["stalls"] >= 2:
                done.add(t["id"])
                d = os.path.join(outdir, config_dir(t["config"]), t["path"])
                os.makedirs(d, exist_ok=True)
                with open(os.path.join(d, "test.xml"), "w") as f:
                    f.write(failing_xml(t["path"], "the nested L1 stopped making progress (no "
                                        "output for minutes) while this test ran, in two runs "
                                        "of the L1; it is not run again"))
                say(f"{t['target']} ({config_dir(t['config'])}): the L1 stopped during it twice: failed")
    with open(manifest, "w") as f:
        json.dump(tests, f, indent=1)
    plan = os.path.join(rootfs, "bt", "plan.sh")
    lines = open(plan).read().splitlines()
    keep = [l for l in lines if not (l.startswith("bazel_test ") and l.split()[1] in done)]
    say(f"resuming: {len(lines) - len(keep)} tests finished, "
        f"{sum(l.startswith('bazel_test ') for l in keep)} to run")
    with open(plan, "w") as f:
        f.write("\n".join(keep) + "\n")
    shutil.copy(plan, os.path.join(rootfs, "cases.sh"))


KVM_SKIP = "/dev/kvm"  # a skip whose message names it was for want of it
# ("/dev/kvm is missing or not accessible", tests/kvm_testing.h and
# tests/require_kvm.sh; "SKIPPED: /dev/kvm missing" in arch/amd64's tests)


def kvm_skips(resdir, config):
    import xml.etree.ElementTree as ET
    for dirpath, _, files in sorted(os.walk(resdir)):
        if "test.xml" not in files:
            continue
        try:
            cases = list(ET.parse(os.path.join(dirpath, "test.xml")).iter("testcase"))
        except ET.ParseError:
            continue
        kvm = []
        for c in cases:
            sk = c.find("skipped")
            if sk is not None and KVM_SKIP in (sk.get("message") or "") + (sk.text or ""):
                kvm.append(f"{c.get('classname', '')}.{c.get('name')}")
        if not kvm:
            continue
        rel = os.path.relpath(dirpath, resdir)
        pkg, name = os.path.split(rel)
        words = [config, f"//{pkg}:{name}"]
        if len(kvm) < len(cases):
            words.append(":".join(kvm))
        print(" ".join(words))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "stage":
        stage(*sys.argv[2:])
    elif len(sys.argv) == 5 and sys.argv[1] == "collect":
        collect(*sys.argv[2:])
    elif len(sys.argv) == 6 and sys.argv[1] == "resume":
        resume(*sys.argv[2:])
    elif len(sys.argv) == 4 and sys.argv[1] == "kvm-skips":
        kvm_skips(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
