# Runs `strata generate` without --model from a scratch working directory and checks that the
# embedded default model answers with the greedy continuation transformers gave at training time
# (models/default/README.md, "Samples"), for a plain prompt and for a chat turn whose control
# tokens (<|user|>, <|end|>, <|assistant|>) must be split out of the text by the tokenizer.
file(MAKE_DIRECTORY ${WORK})
file(WRITE ${WORK}/prompts.jsonl
  "{\"prompt\": \"Once upon a time, there was a little\", \"max_tokens\": 60, \"temperature\": 0}\n"
  "{\"prompt\": \"<|user|>Tell me a story.<|end|><|assistant|>\", \"max_tokens\": 120, \"temperature\": 0}\n")
execute_process(COMMAND ${STRATA} generate --input prompts.jsonl --log-level warn
  WORKING_DIRECTORY ${WORK} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "strata generate failed (${rc}): ${err}")
endif()
set(expected "turtle named Ruby. She lived in a small village near the hill. She wanted to find a new friend. One day, Ruby saw a small feather in the grass. \\\"This is so much fun!\\\" Ruby shouted. But soon Ruby felt hungry. \\\"I do not know the way.\\\" she cried")
set(expected_chat "One cold winter day, a small bird named Lucy went to the market. She lived in a little village near the hill. One day, Lucy found a shiny feather in the grass. \\\"Can we play together?\\\" Lucy shouted. But soon Lucy felt hungry. \\\"I do not know the way.\\\" she cried. Then the squirrel came and helped her. \\\"You are a good friend.\\\" replied the squirrel. Lucy learned that it is fine to ask for help.")
foreach(want "\"text\":\"${expected}\"" "\"finish_reason\":\"stop\",\"index\":1,\"output_ids\"" "\"prompt_tokens\":9,\"text\":\"${expected_chat}\"")
  string(FIND "${out}" "${want}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "unexpected output from the default model:\n${out}\nwanted: ${want}")
  endif()
endforeach()
message(STATUS "default model: ${out}")
