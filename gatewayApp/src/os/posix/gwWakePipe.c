/* gwWakePipe.c - the self-pipe of gwWakePipe.h (POSIX: pipe(2), non-blocking). */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "gwWakePipe.h"

static void setFlags(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

int gwWakePipeOpen(gwWakePipe *wake)
{
    int fds[2];

    *wake = GW_WAKE_PIPE_CLOSED;
    if (pipe(fds) != 0)
        return -1;
    setFlags(fds[0]);
    setFlags(fds[1]);
    wake->read = fds[0];
    wake->write = fds[1];
    return 0;
}

void gwWakePipeSignal(gwWakePipe *wake)
{
    const char byte = 0;

    if (wake->write < 0)
        return;
    while (write(wake->write, &byte, 1) < 0 && errno == EINTR)
        ;   /* EAGAIN: full, the reader wakes anyway */
}

void gwWakePipeDrain(gwWakePipe *wake)
{
    char drain[64];

    while (read(wake->read, drain, sizeof drain) == (ssize_t)sizeof drain)
        ;
}

void gwWakePipeClose(gwWakePipe *wake)
{
    if (wake->read >= 0)
        close(wake->read);
    if (wake->write >= 0)
        close(wake->write);
    *wake = GW_WAKE_PIPE_CLOSED;
}
