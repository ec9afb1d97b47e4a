/*
 * device/registry.c - the device kinds of this build, cpu first.
 *
 * DURE_DEVICES comes from the Makefile's DEVICES list (for example
 * "DEVICE(cpu) DEVICE(cuda)"; a CPU-only build leaves cuda out): each NAME
 * there is the entry device_NAME_entry of device/NAME.c. Adding a kind is
 * a word in that list, not an edit here.
 */
#include "device/device_impl.h"

#ifndef DURE_DEVICES
#error "DURE_DEVICES is not set: build with the Makefile (its DEVICES list)"
#endif

#define DEVICE(name) extern const struct device_entry device_##name##_entry;
DURE_DEVICES
#undef DEVICE

static const struct device_entry *const registry[] = {
#define DEVICE(name) &device_##name##_entry,
    DURE_DEVICES
#undef DEVICE
};

const struct device_entry *const *device_registry(size_t *n)
{
    *n = sizeof registry / sizeof registry[0];
    return registry;
}
