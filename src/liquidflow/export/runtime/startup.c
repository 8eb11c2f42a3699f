/* Minimal Cortex-M start-up for the liquidflow emulated-board harness (QEMU mps2 boards).
 *
 * The vector table sits at 0x0 (see mps2.ld). The reset handler copies .data from flash to RAM,
 * enables the FPU when the build uses one (CPACR: CP10 and CP11 full access), then calls newlib's
 * _start (rdimon crt0: zeroes .bss, sets up semihosting, calls main, exits through semihosting).
 */
#include <stdint.h>

extern void _start(void);
extern uint32_t __stack_top__;
extern uint32_t __data_load__, __data_start__, __data_end__;

void lfh_reset_handler(void);
void lfh_default_handler(void);

void lfh_default_handler(void)
{
    for (;;) {
    }
}

void lfh_reset_handler(void)
{
    uint32_t *src = &__data_load__;
    uint32_t *dst = &__data_start__;
    while (dst < &__data_end__) *dst++ = *src++;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    _start();
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) void (*const lfh_vectors[16])(void) = {
    (void (*)(void))(&__stack_top__),
    lfh_reset_handler,
    lfh_default_handler, /* NMI */
    lfh_default_handler, /* HardFault */
    lfh_default_handler, /* MemManage */
    lfh_default_handler, /* BusFault */
    lfh_default_handler, /* UsageFault */
    0, 0, 0, 0,
    lfh_default_handler, /* SVC */
    lfh_default_handler, /* DebugMon */
    0,
    lfh_default_handler, /* PendSV */
    lfh_default_handler, /* SysTick */
};
