/*
 * A guard around librdkafka's metadata cache lookup by topic name
 * (rd_kafka_metadata_cache_find), against a crash of librdkafka 2.12.1
 * (docs/upstream/librdkafka-topic-recreate.md).
 *
 * A Fetch response may carry KIP-951's leader-discovery tags
 * (CurrentLeader and NodeEndpoints). librdkafka turns them into a
 * metadata update whose topics have a topic id and no name
 * (rd_kafka_handle_Fetch_metadata_update passes NULL for it), and
 * rd_kafka_metadata_update_op looks a topic up by name when its id is
 * zero: rd_kafka_metadata_cache_find(rk, NULL, 1), and strcmp(NULL)
 * crashes the client's main thread. A broker answers so for a topic id it
 * no longer knows (tansu 0.6, the test broker, after the topic was
 * deleted, or after it lost its state).
 *
 * Linked with `-Wl,--wrap=rd_kafka_metadata_cache_find` (the crate's and
 * the command's build scripts), every call from another object of
 * librdkafka comes here: a lookup without a name finds nothing, which
 * librdkafka already handles (it logs "Topic ... not found in cache" and
 * skips the update). Any other lookup is librdkafka's own.
 *
 * `__real_rd_kafka_metadata_cache_find` is weak: without the link option
 * it is NULL (nothing calls the wrapper then), and
 * cepheid_kafka_metadata_guard_active() says so.
 */
#include <stddef.h>

struct rd_kafka_s;
struct rd_kafka_metadata_cache_entry;

extern struct rd_kafka_metadata_cache_entry *
__real_rd_kafka_metadata_cache_find(struct rd_kafka_s *rk,
                                    const char *topic,
                                    int valid) __attribute__((weak));

struct rd_kafka_metadata_cache_entry *
__wrap_rd_kafka_metadata_cache_find(struct rd_kafka_s *rk,
                                    const char *topic,
                                    int valid) {
        if (topic == NULL || __real_rd_kafka_metadata_cache_find == NULL)
                return NULL;
        return __real_rd_kafka_metadata_cache_find(rk, topic, valid);
}

/* 1 when the program was linked with the wrap option (the guard is in
 * force), else 0. */
int cepheid_kafka_metadata_guard_active(void) {
        return __real_rd_kafka_metadata_cache_find != NULL;
}
