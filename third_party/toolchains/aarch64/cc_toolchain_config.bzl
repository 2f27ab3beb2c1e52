"""cc_toolchain_config for Debian's aarch64-linux-gnu cross compiler.

Features not declared here (include paths, defines, libraries_to_link,
user_compile_flags, sysroot, ...) are Bazel's legacy ones, which are right for
GCC. Executables are linked fully static: the nested arm64 testbed's initramfs
has no shared libraries, and the toolchain declares no `supports_dynamic_linker`,
so cc_test links its dependencies from static archives too.
"""

load(
    "@bazel_tools//tools/cpp:cc_toolchain_config_lib.bzl",
    "feature",
    "flag_group",
    "flag_set",
    "tool_path",
    "with_feature_set",
)
load("@bazel_tools//tools/build_defs/cc:action_names.bzl", "ACTION_NAMES")

_COMPILE_ACTIONS = [
    ACTION_NAMES.assemble,
    ACTION_NAMES.preprocess_assemble,
    ACTION_NAMES.c_compile,
    ACTION_NAMES.cpp_compile,
    ACTION_NAMES.cpp_header_parsing,
    ACTION_NAMES.cpp_module_compile,
    ACTION_NAMES.cpp_module_codegen,
    ACTION_NAMES.linkstamp_compile,
]

_LINK_ACTIONS = [
    ACTION_NAMES.cpp_link_executable,
    ACTION_NAMES.cpp_link_dynamic_library,
    ACTION_NAMES.cpp_link_nodeps_dynamic_library,
]

def _flags(actions, flags, features = None):
    return flag_set(
        actions = actions,
        flag_groups = [flag_group(flags = flags)],
        with_features = [with_feature_set(features = features)] if features else [],
    )

def _impl(ctx):
    prefix = "/usr/bin/" + ctx.attr.target + "-"
    tools = ["ar", "cpp", "gcc", "gcov", "ld", "nm", "objcopy", "objdump", "strip", "dwp"]

    features = [
        feature(name = "dbg"),
        feature(name = "opt"),
        # The same defaults as Bazel's autodetected host toolchain, so both
        # architectures compile the same way; .bazelrc's --copt come after.
        feature(
            name = "default_compile_flags",
            enabled = True,
            flag_sets = [
                _flags(_COMPILE_ACTIONS, [
                    "-U_FORTIFY_SOURCE",
                    "-fstack-protector",
                    "-Wall",
                    "-Wunused-but-set-parameter",
                    "-Wno-free-nonheap-object",
                    "-fno-omit-frame-pointer",
                ]),
                _flags(_COMPILE_ACTIONS, ["-g"], ["dbg"]),
                _flags(_COMPILE_ACTIONS, [
                    "-g0",
                    "-O2",
                    "-D_FORTIFY_SOURCE=1",
                    "-DNDEBUG",
                    "-ffunction-sections",
                    "-fdata-sections",
                ], ["opt"]),
            ],
        ),
        feature(
            name = "default_link_flags",
            enabled = True,
            flag_sets = [
                _flags(_LINK_ACTIONS, ["-Wl,-z,relro,-z,now", "-pass-exit-codes"]),
                _flags([ACTION_NAMES.cpp_link_executable], ["-static"]),
                _flags(_LINK_ACTIONS, ["-Wl,--gc-sections"], ["opt"]),
            ],
        ),
        # After libraries_to_link: static archives resolve left to right, so
        # the C++ runtime must come after every object and library.
        feature(
            name = "user_link_flags",
            enabled = True,
            flag_sets = [flag_set(
                actions = _LINK_ACTIONS,
                flag_groups = [
                    flag_group(
                        flags = ["%{user_link_flags}"],
                        iterate_over = "user_link_flags",
                        expand_if_available = "user_link_flags",
                    ),
                    flag_group(flags = ["-lstdc++", "-lm"]),
                ],
            )],
        ),
        # Reproducible outputs, as in Bazel's host toolchain.
        feature(
            name = "unfiltered_compile_flags",
            enabled = True,
            flag_sets = [_flags(_COMPILE_ACTIONS, [
                "-fno-canonical-system-headers",
                "-Wno-builtin-macro-redefined",
                "-D__DATE__=\"redacted\"",
                "-D__TIMESTAMP__=\"redacted\"",
                "-D__TIME__=\"redacted\"",
            ])],
        ),
    ]

    return cc_common.create_cc_toolchain_config_info(
        ctx = ctx,
        features = features,
        cxx_builtin_include_directories = ctx.attr.builtin_include_directories,
        toolchain_identifier = ctx.attr.target,
        host_system_name = "x86_64-linux-gnu",
        target_system_name = ctx.attr.target,
        target_cpu = ctx.attr.cpu,
        target_libc = "glibc",
        compiler = "gcc",
        abi_version = "gcc",
        abi_libc_version = "glibc",
        tool_paths = [tool_path(name = t, path = prefix + t) for t in tools],
    )

cc_toolchain_config = rule(
    implementation = _impl,
    attrs = {
        "cpu": attr.string(mandatory = True),
        # GNU triplet: the tools are /usr/bin/<target>-gcc, -ar, ...
        "target": attr.string(mandatory = True),
        "builtin_include_directories": attr.string_list(mandatory = True),
    },
    provides = [CcToolchainConfigInfo],
)
