/* Lock-free single-producer / single-consumer ring of pointers (C11 atomics).
 * Used by the executor: control -> audio (parameter blocks) and audio -> control
 * (retired plans and parameter blocks, freed off the audio thread).  Internal to
 * the C side: not exported to Python. */
#ifndef RT_SPSC_RING_H
#define RT_SPSC_RING_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_spsc_ring {
    uint32_t mask;             /* capacity - 1 (capacity is a power of two) */
    void **slots;
    /* head: next slot to read (owned by the consumer); tail: next slot to write
     * (owned by the producer).  Kept on separate cache lines. */
    _Alignas(64) atomic_size_t head;
    _Alignas(64) atomic_size_t tail;
} rt_spsc_ring;

/* Control thread: allocates room for at least `capacity` pointers. */
int rt_spsc_ring_init(rt_spsc_ring *r, uint32_t capacity);
void rt_spsc_ring_free(rt_spsc_ring *r);
/* Wait-free; return 0, or -1 when full (push) / NULL when empty (pop). */
int rt_spsc_ring_push(rt_spsc_ring *r, void *item);
void *rt_spsc_ring_pop(rt_spsc_ring *r);
uint32_t rt_spsc_ring_capacity(const rt_spsc_ring *r);
#endif
