/* gwWakePipe.h - a self-pipe that wakes a thread sleeping in poll(): the
 * thread watches `read` for POLLIN, another thread signals. Both ends are
 * non-blocking and close-on-exec (POSIX). Used by the I/O loops, the name
 * server, the beacon watch and the upstream provider's own searches. */
#ifndef INC_gwWakePipe_H
#define INC_gwWakePipe_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gwWakePipe {
    int read, write;    /* -1 when closed */
} gwWakePipe;

/* Its state before gwWakePipeOpen: x->wake = GW_WAKE_PIPE_CLOSED; */
#define GW_WAKE_PIPE_CLOSED ((gwWakePipe){ -1, -1 })

/* Open it: 0, or -1 (both ends -1, errno set). */
int gwWakePipeOpen(gwWakePipe *wake);
/* Put one byte in (any thread); a full pipe already wakes its reader.
 * Nothing when it is closed. */
void gwWakePipeSignal(gwWakePipe *wake);
/* Take out what is in it (the reading thread). */
void gwWakePipeDrain(gwWakePipe *wake);
/* Close the open ends; both become -1. */
void gwWakePipeClose(gwWakePipe *wake);

#ifdef __cplusplus
}
#endif

#endif /* INC_gwWakePipe_H */
