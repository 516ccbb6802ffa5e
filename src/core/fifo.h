/*
 * fifo.h - the singly linked first-in first-out queue, once: a head and a
 * tail pointer over any struct with a `next` member (the session's events,
 * frames and HTTP requests). Macros, so each queue keeps its own type.
 */
#ifndef LAYER_FIFO_H
#define LAYER_FIFO_H

#include <stddef.h>

/* Appends item. */
#define FIFO_PUSH(head, tail, item)                                                                                    \
    do {                                                                                                               \
        (item)->next = NULL;                                                                                           \
        if (tail)                                                                                                      \
            (tail)->next = (item);                                                                                     \
        else                                                                                                           \
            (head) = (item);                                                                                           \
        (tail) = (item);                                                                                               \
    } while (0)

/* Unlinks the first item into out; out is NULL when the queue is empty. */
#define FIFO_POP(head, tail, out)                                                                                      \
    do {                                                                                                               \
        (out) = (head);                                                                                                \
        if (out) {                                                                                                     \
            (head) = (out)->next;                                                                                      \
            if (!(head)) (tail) = NULL;                                                                                \
            (out)->next = NULL;                                                                                        \
        }                                                                                                              \
    } while (0)

#endif
