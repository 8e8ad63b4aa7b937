#include "spsc_ring.h"

#include <stdlib.h>

int rt_spsc_ring_init(rt_spsc_ring *r, uint32_t capacity)
{
    uint32_t cap = 2;
    if (capacity == 0 || capacity > (1u << 24)) return -1;
    while (cap < capacity) cap <<= 1;
    r->slots = calloc(cap, sizeof(void *));
    if (!r->slots) return -1;
    r->mask = cap - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return 0;
}

void rt_spsc_ring_free(rt_spsc_ring *r)
{
    free(r->slots);
    r->slots = NULL;
}

int rt_spsc_ring_push(rt_spsc_ring *r, void *item)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    if (tail - head > r->mask) return -1;
    r->slots[tail & r->mask] = item;
    /* release: the item (and everything written into it) is visible before the slot is. */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
    return 0;
}

void *rt_spsc_ring_pop(rt_spsc_ring *r)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (head == tail) return NULL;
    void *item = r->slots[head & r->mask];
    atomic_store_explicit(&r->head, head + 1, memory_order_release);
    return item;
}

uint32_t rt_spsc_ring_capacity(const rt_spsc_ring *r) { return r->mask + 1; }
