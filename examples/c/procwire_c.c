/* A C11 program over procwire.h: the calls a C caller makes, and what failures look like.
 *
 * Usage:
 *   procwire_c hold-mutex NAME      lock the named mutex NAME, say "locked", then wait to
 *                                   be killed (it never unlocks)
 *   procwire_c lock-mutex NAME      lock NAME and say "locked" or "abandoned"
 *   procwire_c open-pipe NAME       try to open the pipe NAME; print the outcome
 *   procwire_c open-mapping NAME    try to open the mapping NAME for reading; print the outcome
 *   procwire_c too-large SLOT       create the mailslot SLOT (16-byte messages) and write
 *                                   100 bytes to it; print the outcome
 *   procwire_c null                 pass NULL where a handle belongs; print the outcome
 *   procwire_c ping NAME COUNT SIZE connect to the pipe NAME and do COUNT round trips of
 *                                   SIZE-byte messages; print the mean in nanoseconds
 *   procwire_c send-handles PIPE MAPPING EVENT FILE ECHO
 *                                   create the pipe PIPE, the mapping MAPPING (4096 bytes
 *                                   holding "from the sender") and the event EVENT, open a
 *                                   connection to the pipe ECHO; say "ready", accept one
 *                                   client and pass it the mapping (read-write, then
 *                                   read-only), the file FILE (read-only), the ECHO
 *                                   connection and the event; then wait for the event to be
 *                                   set and print what the client wrote at offset 100
 *   procwire_c recv-handles PIPE    connect to PIPE and receive what send-handles passes,
 *                                   using each object; print what happens at each step
 *
 * An outcome is printed as "STATUS_NAME: message" on a line of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procwire.h"

static void outcome(ProcwireStatus status) {
    printf("%s: %s\n", procwire_status_name(status),
           status == PROCWIRE_STATUS_OK ? "" : procwire_last_error_message());
    fflush(stdout);
}

static int hold_mutex(const char *name, int forever) {
    ProcwireMutex *mutex = NULL;
    ProcwireStatus status = procwire_mutex_open_or_create(name, &mutex);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    status = procwire_mutex_lock(mutex, 5000);
    if (status == PROCWIRE_STATUS_ABANDONED) {
        printf("abandoned\n");
        procwire_mutex_mark_repaired(mutex);
    } else if (status == PROCWIRE_STATUS_OK) {
        printf("locked\n");
    } else {
        outcome(status);
        return 1;
    }
    fflush(stdout);
    if (forever) {
        for (;;) pause();
    }
    procwire_mutex_unlock(mutex);
    procwire_mutex_free(mutex);
    return 0;
}

static int open_pipe(const char *name) {
    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.timeout_ms = 500;
    ProcwirePipeConnection *pipe = NULL;
    ProcwireStatus status = procwire_pipe_open(name, &options, &pipe);
    outcome(status);
    procwire_pipe_connection_free(pipe);
    return 0;
}

static int open_mapping(const char *name) {
    ProcwireMapping *mapping = NULL;
    ProcwireStatus status = procwire_mapping_open(name, PROCWIRE_ACCESS_READ, &mapping);
    outcome(status);
    procwire_mapping_free(mapping);
    return 0;
}

static int too_large(const char *name) {
    ProcwireMailslotOptions options;
    procwire_mailslot_options_init(&options);
    options.max_message_size = 16;
    ProcwireMailslot *slot = NULL;
    ProcwireStatus status = procwire_mailslot_create(name, &options, &slot);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    ProcwireMailslotWriter *writer = NULL;
    status = procwire_mailslot_writer_open(name, 1000, &writer);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    uint8_t message[100];
    memset(message, 'x', sizeof message);
    outcome(procwire_mailslot_write(writer, message, sizeof message));
    procwire_mailslot_writer_free(writer);
    procwire_mailslot_free(slot);
    return 0;
}

static int null_handle(void) {
    outcome(procwire_pipe_send(NULL, (const uint8_t *)"x", 1));
    return 0;
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int ping(const char *name, long count, size_t size) {
    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.read_mode = PROCWIRE_PIPE_MODE_MESSAGE;
    ProcwirePipeConnection *pipe = NULL;
    ProcwireStatus status = procwire_pipe_open(name, &options, &pipe);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return 1;
    }
    uint8_t *message = calloc(size, 1);
    uint8_t *answer = malloc(size + 1);
    double start = now_ns();
    for (long i = 0; i < count; ++i) {
        size_t got = 0;
        bool complete = false;
        status = procwire_pipe_send(pipe, message, size);
        if (status == PROCWIRE_STATUS_OK) {
            status = procwire_pipe_recv_into(pipe, answer, size + 1, &got, &complete);
        }
        if (status != PROCWIRE_STATUS_OK) {
            outcome(status);
            return 1;
        }
    }
    printf("mean %.0f ns\n", (now_ns() - start) / (double)count);
    free(message);
    free(answer);
    procwire_pipe_connection_free(pipe);
    return 0;
}

/* Prints the outcome and returns 1 unless it is OK. */
static int failed(ProcwireStatus status) {
    if (status == PROCWIRE_STATUS_OK) return 0;
    outcome(status);
    return 1;
}

static int send_handles(const char *pipe_name, const char *mapping_name, const char *event_name,
                        const char *file_path, const char *echo_name) {
    ProcwirePipeServer *server = NULL;
    ProcwireMapping *mapping = NULL;
    ProcwireEvent *event = NULL;
    ProcwirePipeConnection *echo = NULL;
    ProcwirePipeConnection *client = NULL;
    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.read_mode = PROCWIRE_PIPE_MODE_MESSAGE;
    if (failed(procwire_pipe_server_create(pipe_name, NULL, &server))) return 1;
    if (failed(procwire_mapping_create(mapping_name, 4096, NULL, &mapping))) return 1;
    if (failed(procwire_event_create(event_name, true, false, &event))) return 1;
    if (failed(procwire_pipe_open(echo_name, &options, &echo))) return 1;
    const char text[] = "from the sender";
    if (failed(procwire_mapping_write(mapping, 0, (const uint8_t *)text, sizeof text))) return 1;
    FILE *file = fopen(file_path, "r");
    if (file == NULL) {
        perror(file_path);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    if (failed(procwire_pipe_server_accept(server, 10000, &client))) return 1;
    if (failed(procwire_pipe_send_mapping(client, mapping, PROCWIRE_ACCESS_NONE))) return 1;
    if (failed(procwire_pipe_send_mapping(client, mapping, PROCWIRE_ACCESS_READ))) return 1;
    if (failed(procwire_pipe_send_file(client, fileno(file), PROCWIRE_ACCESS_READ))) return 1;
    if (failed(procwire_pipe_send_pipe(client, echo, PROCWIRE_ACCESS_NONE))) return 1;
    /* Passed: the receiver alone talks on it now. */
    procwire_pipe_connection_free(echo);
    if (failed(procwire_pipe_send_event(client, event))) return 1;
    /* A connection cannot pass itself. */
    printf("self: ");
    outcome(procwire_pipe_send_pipe(client, client, PROCWIRE_ACCESS_NONE));
    if (failed(procwire_event_wait(event, 10000))) return 1;
    char reply[32] = {0};
    if (failed(procwire_mapping_read(mapping, 100, (uint8_t *)reply, sizeof reply - 1))) return 1;
    printf("reply: %s\n", reply);
    fclose(file);
    procwire_pipe_connection_free(client);
    procwire_event_free(event);
    procwire_mapping_free(mapping);
    procwire_pipe_server_free(server);
    return 0;
}

/* Receives the next passed handle, printing its kind, access and name. */
static ProcwirePassedHandle *next_handle(ProcwirePipeConnection *pipe) {
    ProcwirePassedHandle *handle = NULL;
    ProcwireHandleKind kind = PROCWIRE_HANDLE_KIND_NONE;
    ProcwireStatus status = procwire_pipe_recv_handle(pipe, 10000, &kind, &handle);
    if (status != PROCWIRE_STATUS_OK) {
        outcome(status);
        return NULL;
    }
    printf("handle: kind %d access %d name \"%s\"\n", (int)kind,
           (int)procwire_passed_handle_access(handle), procwire_passed_handle_name(handle));
    return handle;
}

static int recv_handles(const char *pipe_name) {
    ProcwireClientOptions options;
    procwire_client_options_init(&options);
    options.read_mode = PROCWIRE_PIPE_MODE_MESSAGE;
    ProcwirePipeConnection *pipe = NULL;
    if (failed(procwire_pipe_open(pipe_name, &options, &pipe))) return 1;

    /* The next frame is a handle: a plain receive says so and takes nothing. */
    uint8_t *data = NULL;
    size_t len = 0;
    printf("recv: ");
    outcome(procwire_pipe_recv(pipe, 10000, &data, &len));

    /* The mapping, read-write. Asked for as a pipe, it says what it is and stays. */
    ProcwirePassedHandle *handle = next_handle(pipe);
    if (handle == NULL) return 1;
    ProcwirePipeConnection *not_a_pipe = NULL;
    printf("into_pipe: ");
    outcome(procwire_passed_handle_into_pipe(handle, &not_a_pipe));
    ProcwireMapping *mapping = NULL;
    if (failed(procwire_passed_handle_into_mapping(handle, &mapping))) return 1;
    printf("again: ");
    outcome(procwire_passed_handle_into_mapping(handle, &mapping));
    procwire_passed_handle_free(handle);
    printf("mapping: %s (%zu bytes)\n", (const char *)procwire_mapping_ptr(mapping),
           procwire_mapping_len(mapping));
    const char reply[] = "from the receiver";
    if (failed(procwire_mapping_write(mapping, 100, (const uint8_t *)reply, sizeof reply))) return 1;

    /* The same mapping, read-only: writes are refused. */
    handle = next_handle(pipe);
    if (handle == NULL) return 1;
    ProcwireMapping *read_only = NULL;
    if (failed(procwire_passed_handle_into_mapping(handle, &read_only))) return 1;
    procwire_passed_handle_free(handle);
    printf("read-only: writable %d, reads %s; write: ", (int)procwire_mapping_is_writable(read_only),
           (const char *)procwire_mapping_ptr(read_only));
    outcome(procwire_mapping_write(read_only, 0, (const uint8_t *)"x", 1));

    /* The file, read-only: its descriptor is ours. */
    handle = next_handle(pipe);
    if (handle == NULL) return 1;
    int fd = -1;
    if (failed(procwire_passed_handle_into_file(handle, &fd))) return 1;
    procwire_passed_handle_free(handle);
    char contents[64] = {0};
    ssize_t got = pread(fd, contents, sizeof contents - 1, 0);
    printf("file: %s (read %zd bytes; write %s)\n", contents, got,
           write(fd, "x", 1) < 0 ? "refused" : "allowed");
    close(fd);

    /* The sender's connection to the echo pipe: it talks to the same server. */
    handle = next_handle(pipe);
    if (handle == NULL) return 1;
    ProcwirePipeConnection *echo = NULL;
    if (failed(procwire_passed_handle_into_pipe(handle, &echo))) return 1;
    procwire_passed_handle_free(handle);
    const char hello[] = "hello through a passed pipe";
    if (failed(procwire_pipe_send(echo, (const uint8_t *)hello, sizeof hello - 1))) return 1;
    if (failed(procwire_pipe_recv(echo, 10000, &data, &len))) return 1;
    printf("echo: %.*s\n", (int)len, (const char *)data);
    procwire_bytes_free(data, len);
    procwire_pipe_connection_free(echo);

    /* The event: setting it here wakes the sender. */
    handle = next_handle(pipe);
    if (handle == NULL) return 1;
    ProcwireEvent *event = NULL;
    if (failed(procwire_passed_handle_into_event(handle, &event))) return 1;
    procwire_passed_handle_free(handle);
    if (failed(procwire_event_set(event))) return 1;
    printf("event set\n");

    procwire_event_free(event);
    procwire_mapping_free(read_only);
    procwire_mapping_free(mapping);
    procwire_pipe_connection_free(pipe);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "hold-mutex") == 0) return hold_mutex(argv[2], 1);
    if (argc >= 3 && strcmp(argv[1], "lock-mutex") == 0) return hold_mutex(argv[2], 0);
    if (argc >= 3 && strcmp(argv[1], "open-pipe") == 0) return open_pipe(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "open-mapping") == 0) return open_mapping(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "too-large") == 0) return too_large(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "null") == 0) return null_handle();
    if (argc >= 5 && strcmp(argv[1], "ping") == 0)
        return ping(argv[2], atol(argv[3]), (size_t)atol(argv[4]));
    if (argc >= 7 && strcmp(argv[1], "send-handles") == 0)
        return send_handles(argv[2], argv[3], argv[4], argv[5], argv[6]);
    if (argc >= 3 && strcmp(argv[1], "recv-handles") == 0) return recv_handles(argv[2]);
    fprintf(stderr, "usage: see the comment at the top of procwire_c.c\n");
    return 2;
}
