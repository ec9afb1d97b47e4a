# dure - GNU make build.
#
#   make            build build/dure (probes printed, one line each)
#   make deps       install the Debian packages everything needs (idempotent)
#   make test       deps, build, then every test; ends with "N passed, N failed"
#   make demo       deps, build, then the demo job on 2 ranks
#   make asan       the test suite under AddressSanitizer + UBSan (build-asan/)
#   make tsan       the threaded tests under ThreadSanitizer (build-tsan/)
#   make bench      deps, build, then the benchmarks in bench/
#   make faults     the fault matrix on a 3-node namespaced Slurm cluster
#                   (tests/faults/matrix.sh, root; about 13 minutes)
#   make gpu-check  on a GPU machine: CUDA build, kernel tests, NCCL, runs, MFU
#                   (tests/gpu/check.sh; exit 77 when no GPU is visible)
#   make fuzz-smoke every libFuzzer harness in tests/fuzz/ for a few seconds
#   make fuzz       the long fuzzing campaign (FUZZ_RUNS per target)
#
# Knobs: USE_CUDA=auto|yes|no  CUDA_HOME  NCCL_HOME  NVCC_GENCODE  BUILD  OPT  V=1
#        JOBS (parallel compiles of the goals above; default: the CPUs make may run on, tests/cpus.sh)
#        FUZZ_RUNS  FUZZ_SECONDS  FUZZ_TARGETS (see tests/fuzz/README.md)
#
# Sources are found by folder. A file named *_cuda.c or *.cu is compiled
# only when CUDA is on; a file named *_nocuda.c only when it is off. The
# device kinds compiled in are the DEVICES list below (device/README.md).
# COMM_BACKENDS lists the collective backends built in, in the order
# parallel.backend = auto tries them (collectives/registry.c).

DURE_VERSION := 0.1.0
BUILD        ?= build
USE_CUDA     ?= auto
CUDA_HOME    ?= /usr/local/cuda
NCCL_HOME    ?= $(CUDA_HOME)
NVCC_GENCODE ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
OPT          ?= -O2 -g
SAN          ?= 0
JOBS         ?= $(shell . ./tests/cpus.sh && machine_cpus 2>/dev/null || echo 1)
V            ?= 0
Q := $(if $(filter 1,$(V)),,@)

# Goals that only orchestrate: they run `make deps` first and then a sub-make,
# so probing must wait for the sub-make (the packages may not be there yet).
SETUP_GOALS := deps test demo asan tsan bench gpu-check clean help fuzz fuzz-smoke fuzz-build
GOALS := $(or $(MAKECMDGOALS),all)
NEED_PROBES := $(if $(filter-out $(SETUP_GOALS),$(GOALS)),1,0)

.DEFAULT_GOAL := all
.PHONY: all deps test check demo asan tsan bench bench-run faults gpu-check clean help tests-build FORCE \
        fuzz fuzz-smoke fuzz-build fuzz-bins

# ---------------------------------------------------------------- probes
ifeq ($(NEED_PROBES),1)
probe_pc = $(if $(shell pkg-config --exists $(1) 2>/dev/null && echo y),\
  $(info ✓ $(1) $(shell pkg-config --modversion $(1)) (pkg-config)),\
  $(error ✗ $(1) not found by pkg-config: run 'make deps' (Debian package $(2))))
$(call probe_pc,hdf5-openmpi,libhdf5-openmpi-dev)
$(call probe_pc,cmocka,libcmocka-dev)
$(call probe_pc,openblas,libopenblas-dev)
$(call probe_pc,inih,libinih-dev)
$(call probe_pc,libcrypto,libssl-dev)
$(call probe_pc,zlib,zlib1g-dev)

ifneq ($(shell pkg-config --exists ompi-c 2>/dev/null && echo y),)
  MPI_CFLAGS := $(shell pkg-config --cflags ompi-c)
  MPI_LIBS   := $(shell pkg-config --libs ompi-c)
  $(info ✓ Open MPI $(shell pkg-config --modversion ompi-c) (pkg-config ompi-c))
else ifneq ($(shell command -v mpicc 2>/dev/null),)
  MPI_CFLAGS := $(shell mpicc --showme:compile)
  MPI_LIBS   := $(shell mpicc --showme:link)
  $(info ✓ Open MPI (mpicc --showme))
else
  $(error ✗ Open MPI not found (no pkg-config ompi-c, no mpicc): run 'make deps')
endif

PKG_CFLAGS := $(shell pkg-config --cflags hdf5-openmpi openblas inih libcrypto zlib)
PKG_LIBS   := $(shell pkg-config --libs hdf5-openmpi openblas inih libcrypto zlib)
CMOCKA_CFLAGS := $(shell pkg-config --cflags cmocka)
CMOCKA_LIBS   := $(shell pkg-config --libs cmocka)

NVCC := $(CUDA_HOME)/bin/nvcc
ifeq ($(USE_CUDA),no)
  HAVE_CUDA := 0
  $(info ✗ CUDA off (USE_CUDA=no): CPU-only build)
else
  cuda_found := $(and $(wildcard $(NVCC)),$(wildcard $(CUDA_HOME)/include/cuda_runtime.h))
  nccl_found := $(wildcard $(NCCL_HOME)/include/nccl.h)
  ifneq ($(and $(cuda_found),$(nccl_found)),)
    HAVE_CUDA := 1
    $(info ✓ nvcc $(shell $(NVCC) --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') ($(NVCC)))
    $(info ✓ NCCL ($(NCCL_HOME)/include/nccl.h))
  else ifeq ($(USE_CUDA),yes)
    $(error ✗ USE_CUDA=yes but $(if $(cuda_found),NCCL was not found under NCCL_HOME=$(NCCL_HOME),CUDA was not found under CUDA_HOME=$(CUDA_HOME)))
  else
    HAVE_CUDA := 0
    $(info ✗ $(if $(cuda_found),NCCL not found under NCCL_HOME=$(NCCL_HOME),nvcc not found under CUDA_HOME=$(CUDA_HOME)): CPU-only build)
  endif
endif
endif

# ---------------------------------------------------------------- flags
CSTD   := -std=c11 -D_GNU_SOURCE
WARN   := -Wall -Wextra -Werror -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes
CFLAGS_ALL := $(CSTD) $(WARN) $(OPT) -fopenmp -I. \
              -DDURE_VERSION='"$(DURE_VERSION)"' -DDURE_HAVE_CUDA=$(HAVE_CUDA) \
              $(MPI_CFLAGS) $(PKG_CFLAGS)
LDLIBS_ALL := $(PKG_LIBS) $(MPI_LIBS) -fopenmp -lm -lpthread

ifeq ($(HAVE_CUDA),1)
  NCCL_LIBDIR := $(firstword $(wildcard $(NCCL_HOME)/lib64 $(NCCL_HOME)/lib))
  CFLAGS_ALL  += -isystem $(CUDA_HOME)/include -isystem $(NCCL_HOME)/include
  LDLIBS_ALL  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 \
                 -L$(NCCL_LIBDIR) -Wl,-rpath,$(NCCL_LIBDIR) \
                 -lnccl -lcudart -lstdc++
  NVCCFLAGS   := -O3 -g -std=c++17 $(NVCC_GENCODE) -I. -I$(NCCL_HOME)/include \
                 -DDURE_HAVE_CUDA=1 -Xcompiler -Wall,-Wextra,-Werror
endif

ifeq ($(SAN),1)
  SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
  CFLAGS_ALL += $(SANFLAGS)
  LDLIBS_ALL += $(SANFLAGS)
endif

# FUZZ=1 (set by `make fuzz-build`, with CC=clang): libdure instrumented for
# libFuzzer's coverage, with ASan and UBSan. Three clang diagnostics that gcc
# does not have are off: printf-like wrappers taking a va_list, OpenMP simd
# loops clang declines to vectorize, and gcc's own loop pragmas.
ifeq ($(FUZZ),1)
  FUZZFLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
  CFLAGS_ALL += $(FUZZFLAGS) -fsanitize=fuzzer-no-link \
                -Wno-format-nonliteral -Wno-pass-failed -Wno-unknown-pragmas
  LDLIBS_ALL += $(FUZZFLAGS) -fsanitize=fuzzer
endif

# ---------------------------------------------------------------- sources
MODULES  := common device collectives dataio ckpt model plan jobs slurm train tune launcher
ALL_C    := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
MAIN_C   := launcher/main.c

# The device kinds: each NAME is device/NAME.c (its registry entry
# device_NAME_entry) with device/NAME_*.{c,cu}, and the model's compute for
# it, model/model_NAME.c with model/kernels_NAME.{c,cu}. DEVICES_ALL is the
# one list; a kind this build cannot compile is left out of DEVICES, and so
# out of the registry (device/registry.c) and the link.
DEVICES_ALL := cpu cuda
DEVICES     := cpu $(if $(filter 1,$(HAVE_CUDA)),cuda)
device_src   = $(wildcard device/$(1).c device/$(1)_*.c device/$(1)_*.cu \
                 model/model_$(1).c model/kernels_$(1).c model/kernels_$(1).cu)
DEVICES_OFF_SRC := $(foreach d,$(filter-out $(DEVICES),$(DEVICES_ALL)),$(call device_src,$(d)))
CFLAGS_ALL += -DDURE_DEVICES='$(foreach d,$(DEVICES),DEVICE($(d)))'

ifeq ($(HAVE_CUDA),1)
  LIB_C  := $(filter-out $(MAIN_C) %_nocuda.c $(DEVICES_OFF_SRC),$(ALL_C))
  LIB_CU := $(filter-out $(DEVICES_OFF_SRC),$(foreach m,$(MODULES),$(wildcard $(m)/*.cu)))
else
  LIB_C  := $(filter-out $(MAIN_C) %_cuda.c $(DEVICES_OFF_SRC),$(ALL_C))
  LIB_CU :=
endif
LIB_OBJ  := $(LIB_C:%.c=$(BUILD)/obj/%.o) $(LIB_CU:%.cu=$(BUILD)/obj/%.cu.o)
COMM_BACKENDS := $(strip $(if $(filter 1,$(HAVE_CUDA)),nccl) mpi)
LIBDURE  := $(BUILD)/libdure.a
DURE     := $(BUILD)/dure

UNIT_SRC  := $(wildcard tests/unit/*.c)
MPI_SRC   := $(wildcard tests/mpi/*.c)
BENCH_SRC := $(wildcard bench/*.c)
TEST_SUPPORT := $(wildcard tests/support/*.c)
TEST_BINS  := $(UNIT_SRC:%.c=$(BUILD)/%) $(MPI_SRC:%.c=$(BUILD)/%)
BENCH_BINS := $(BENCH_SRC:%.c=$(BUILD)/%)
SUPPORT_OBJ := $(TEST_SUPPORT:%.c=$(BUILD)/obj/%.o)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRC:%.c=$(BUILD)/%)
FUZZ_SUPPORT_OBJ := $(BUILD)/obj/tests/fuzz/support.o

# ---------------------------------------------------------------- build
all: $(DURE)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_ALL) $(CMOCKA_CFLAGS) $(EXTRA_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NVCC    $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@

# The git revision is a file that changes only when the revision does, so
# launcher/version.c is rebuilt exactly when it must be.
$(BUILD)/git-rev: FORCE
	@mkdir -p $(BUILD)
	@rev=$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown); \
	 if [ -n "$$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$$rev-dirty"; fi; \
	 if [ "$$(cat $@ 2>/dev/null)" != "$$rev" ]; then echo "$$rev" > $@; fi
$(BUILD)/obj/launcher/version.o: $(BUILD)/git-rev
$(BUILD)/obj/launcher/version.o: EXTRA_CFLAGS = -DDURE_GIT_REV='"$(shell cat $(BUILD)/git-rev 2>/dev/null)"' \
    -DDURE_NVCC_GENCODE='"$(NVCC_GENCODE)"'

# The backend list is a file that changes only when the list does.
$(BUILD)/comm-backends: FORCE
	@mkdir -p $(BUILD)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(COMM_BACKENDS)" ]; then echo "$(COMM_BACKENDS)" > $@; fi
$(BUILD)/obj/collectives/registry.o: $(BUILD)/comm-backends
$(BUILD)/obj/collectives/registry.o: EXTRA_CFLAGS = \
    -DDURE_COMM_BACKENDS='$(foreach b,$(COMM_BACKENDS),X($(b)))'

# The batch-script template is embedded with .incbin, which -MMD cannot see.
$(BUILD)/obj/slurm/batch_template.o: slurm/batch.sh.in

$(LIBDURE): $(LIB_OBJ)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)$(AR) rcs $@ $^

$(DURE): $(BUILD)/obj/$(MAIN_C:.c=.o) $(LIBDURE)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/%.c $(LIBDURE) $(SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS_ALL) $(CMOCKA_CFLAGS) -o $@ $< $(SUPPORT_OBJ) $(LIBDURE) $(CMOCKA_LIBS) $(LDLIBS_ALL)

$(BUILD)/bench/%: bench/%.c $(LIBDURE)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(LIBDURE) $(LDLIBS_ALL)

tests-build: $(DURE) $(TEST_BINS) $(BENCH_BINS)

# A harness: libFuzzer's main, the shared support, libdure (FUZZ=1 builds).
$(BUILD)/tests/fuzz/%: tests/fuzz/%.c $(LIBDURE) $(FUZZ_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CC) $(CFLAGS_ALL) -o $@ $< $(FUZZ_SUPPORT_OBJ) $(LIBDURE) $(LDLIBS_ALL)

fuzz-bins: $(FUZZ_BINS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- workflows
DEBIAN_PACKAGES := pkg-config make gcc openmpi-bin libopenmpi-dev \
    libhdf5-openmpi-dev hdf5-tools zlib1g-dev libcmocka-dev libopenblas-dev libinih-dev \
    libssl-dev \
    slurm-wlm munge gnuplot-nox shellcheck python3-h5py procps iproute2 util-linux

# clang with libFuzzer and its OpenMP runtime, for tests/fuzz/ (make test
# runs the harnesses briefly, so deps installs them too).
FUZZ_PACKAGES := clang libclang-rt-14-dev libomp-14-dev
FUZZ_BUILD    ?= build-fuzz
FUZZ_CC       ?= clang

# Installs only what is missing; with everything present it asks no registry.
deps: PACKAGES = $(DEBIAN_PACKAGES) $(FUZZ_PACKAGES)
deps:
	@missing=$$(for p in $(PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; \
	  done); \
	if [ -z "$$missing" ]; then \
	  echo "✓ $@: all $(words $(PACKAGES)) Debian packages installed"; \
	else \
	  echo "$@: installing" $$missing; \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "✗ $@: not root and no sudo: install as root:" $$missing >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# With clang and libFuzzer installed (make deps), the fuzz harnesses are
# built with the tests and tests/fuzz/test_fuzz_smoke.sh runs them briefly;
# without, that test is skipped.
LIBFUZZER := $(wildcard $(shell $(FUZZ_CC) -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-$(shell uname -m).a)

check: tests-build $(if $(LIBFUZZER),fuzz-build)
	bash tests/run.sh $(BUILD)

test:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) check

asan:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-asan SAN=1 OPT='-O1 -g' check

# ThreadSanitizer over every test that runs dure's threads (communication,
# loader, checkpoint, heartbeat and watchdog threads beside the training
# loop): the unit, MPI-program, MPI shell and command-line tests of a
# CPU-only build (CUDA's runtime is not instrumented). The Slurm and
# cluster tests run the same binaries under more daemons, and the fuzz
# harnesses have their own build. tests/run.sh sets the options and
# tests/tsan.supp names what is left out and why. About 15 minutes on 2
# cores, build included.
TSAN_SKIP := tests/(multinode|slurm|faults|fuzz)/
tsan:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=build-tsan USE_CUDA=no \
	    OPT='-O1 -g -fsanitize=thread -fno-omit-frame-pointer' tests-build
	DURE_TEST_SKIP='$(TSAN_SKIP)' bash tests/run.sh build-tsan

demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	bash launcher/demo.sh $(BUILD)

bench:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) bench-run

bench-run: tests-build
	bash bench/run.sh $(BUILD)

# The fault matrix on its own 3-node namespaced cluster (about 13 minutes).
faults: tests-build
	bash tests/faults/matrix.sh $(BUILD)

# Builds with USE_CUDA=yes in build-gpu/ itself (after checking what the
# machine lacks); no `make deps`: a GPU machine may reach no registry.
gpu-check:
	bash tests/gpu/check.sh build-gpu

# The harnesses (clang, CPU-only, ASan + UBSan) in $(FUZZ_BUILD)/tests/fuzz/.
fuzz-build:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) USE_CUDA=no CC=$(FUZZ_CC) FUZZ=1 \
	    OPT='-O1 -g' fuzz-bins

# Each harness for a few seconds on its corpus and regression inputs.
fuzz-smoke:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	bash tests/fuzz/run.sh smoke $(FUZZ_BUILD)

# The campaign: targets one after another, one process each, FUZZ_RUNS
# executions (and at most FUZZ_SECONDS each when set); writes
# bench/results/fuzz.json.
fuzz:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	bash tests/fuzz/run.sh campaign $(FUZZ_BUILD)

clean:
	rm -rf build build-asan build-tsan build-gpu $(FUZZ_BUILD)

help:
	@sed -n '2,19p' Makefile | sed 's/^# \{0,1\}//'

FORCE:

# Keep intermediate objects (test support) so relinks do not rebuild them.
.SECONDARY:
