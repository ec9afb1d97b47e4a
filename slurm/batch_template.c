/*
 * slurm/batch_template.c - slurm/batch.sh.in embedded in the dure binary, so
 * a dure copied anywhere renders the same script (the Makefile rebuilds this
 * object when the template changes).
 */
#include "slurm/render.h"

__asm__(".section .rodata\n"
        ".global slurm_batch_template\n"
        ".type slurm_batch_template, @object\n"
        ".balign 16\n"
        "slurm_batch_template:\n"
        ".incbin \"slurm/batch.sh.in\"\n"
        ".byte 0\n"
        ".size slurm_batch_template, . - slurm_batch_template\n"
        ".previous\n");
