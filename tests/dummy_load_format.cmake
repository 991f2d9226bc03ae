# Runs `strata generate --load-format dummy` on a folder that holds only config.json: token-id
# prompts produce output (the same on every run), a text prompt gets a tokenizer error, and an
# unknown --load-format value is rejected with a message naming the flag.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/model)
file(WRITE ${WORK}/model/config.json [[{
  "architectures": ["Qwen3ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
  "vocab_size": 512, "max_position_embeddings": 256, "rope_theta": 1000000.0,
  "tie_word_embeddings": false, "eos_token_id": 0
}]])
file(WRITE ${WORK}/prompts.jsonl
  "{\"prompt_ids\": [1, 2, 3, 4, 5], \"max_tokens\": 8, \"temperature\": 0, \"ignore_eos\": true}\n"
  "{\"prompt_ids\": [9, 8, 7], \"max_tokens\": 4, \"temperature\": 0.8, \"seed\": 3, \"ignore_eos\": true}\n")

set(runs "")
foreach(run 1 2)
  execute_process(COMMAND ${STRATA} generate --model ${WORK}/model --load-format dummy --input ${WORK}/prompts.jsonl
                          --log-level warn
    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "strata generate --load-format dummy failed (${rc}):\n${out}\n${err}")
  endif()
  # CMake regexes have no {n}: spell out 8 and 4 output ids.
  set(id "[0-9]+")
  foreach(want "\"finish_reason\":\"length\",\"index\":0,\"output_ids\":\\[${id},${id},${id},${id},${id},${id},${id},${id}\\]"
               "\"finish_reason\":\"length\",\"index\":1,\"output_ids\":\\[${id},${id},${id},${id}\\]")
    string(REGEX MATCH "${want}" found "${out}")
    if(NOT found)
      message(FATAL_ERROR "unexpected output from the dummy model:\n${out}\nwanted: ${want}")
    endif()
  endforeach()
  list(APPEND runs "${out}")
endforeach()
list(GET runs 0 first)
list(GET runs 1 second)
if(NOT first STREQUAL second)
  message(FATAL_ERROR "dummy weights are not deterministic across runs:\n${first}\n${second}")
endif()

# No tokenizer files: a text prompt fails on its own line, naming what is missing.
file(WRITE ${WORK}/text.jsonl "{\"prompt\": \"hello\"}\n")
execute_process(COMMAND ${STRATA} generate --model ${WORK}/model --load-format dummy --input ${WORK}/text.jsonl
                        --log-level warn
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
string(FIND "${out}" "cannot tokenize the prompt" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "a text prompt without tokenizer files should fail clearly (${rc}):\n${out}\n${err}")
endif()

execute_process(COMMAND ${STRATA} generate --model ${WORK}/model --load-format pytorch --input ${WORK}/prompts.jsonl
  OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
string(FIND "${err}" "--load-format: load format 'pytorch' is not supported (auto, safetensors, dummy)" at)
if(NOT rc EQUAL 2 OR at EQUAL -1)
  message(FATAL_ERROR "an unknown --load-format should be a usage error naming the flag (${rc}):\n${err}")
endif()
message(STATUS "dummy model: ${first}")
