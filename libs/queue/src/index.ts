export {
  addTraining,
  createRedis,
  createTrainingQueue,
  enqueueTraining,
  TRAINING_ATTEMPTS,
  TRAINING_QUEUE,
  trainingDemand,
  type QueuePayloads,
  type TrainingQueue,
} from './training-queue.js';
